// LoraEmotion.h - everything a sketch needs: the codec (LoraEmotionCore.h), the relay
// (LoraEmotionRelay.h) and the text log formatter (LoraEmotionLog.h). API.md describes it.
#ifndef LORA_EMOTION_H
#define LORA_EMOTION_H

#include "LoraEmotionCore.h"
#include "LoraEmotionLog.h"
#include "LoraEmotionRelay.h"

#endif  // LORA_EMOTION_H
