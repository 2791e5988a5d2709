// relay_twin.cpp - drives the sketch's C++ Relay with a script of timed inputs and prints its
// uplinks, so that tests/test_aggregator.py can hold lora_emotion.aggregator to the same
// decisions. Input (stdin), one step per line:
//   <t_ms> <frame hex>...   frames arriving over USB serial at t_ms ("-" for none)
// after each line the relay takes its input (poll) and decides once (plan), as loop() does;
// a join or an uplink succeeds at once (endPacket returns the length) at the fixed data rate.
// Arguments: [data rate] [label set id] [command downlink hex, applied at 0 ms].
// Output: "UP <t_ms> <port> <hex>" per uplink, then "END received=.. dropped=.. invalid=..".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "LoraEmotionRelay.h"

using lora_emotion::Payload;
using lora_emotion::Relay;

static lora_emotion::Relay relay;

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char** argv) {
  const int data_rate = argc > 1 ? atoi(argv[1]) : 5;
  const int label_set = argc > 2 ? atoi(argv[2]) : 0;
  relay.begin(0, static_cast<uint8_t>(label_set), nullptr);
  relay.modem_result(true, 0);
  if (argc > 3) {  // a command downlink (hex, FPort 3) before the first decision
    uint8_t command[64];
    uint8_t n = 0;
    for (size_t i = 0; argv[3][i] && argv[3][i + 1] && n < sizeof(command); i += 2) {
      command[n++] = static_cast<uint8_t>(hex_value(argv[3][i]) * 16 + hex_value(argv[3][i + 1]));
    }
    relay.downlink(3, command, n, 0);
  }
  char line[8192];
  while (fgets(line, sizeof(line), stdin) != nullptr) {
    char* cursor = line;
    const uint32_t now = static_cast<uint32_t>(strtoul(cursor, &cursor, 10));
    for (char* token = strtok(cursor, " \t\r\n"); token != nullptr; token = strtok(nullptr, " \t\r\n")) {
      if (strcmp(token, "-") == 0) continue;
      for (size_t i = 0; token[i] && token[i + 1]; i += 2) {
        relay.serial_byte(static_cast<uint8_t>(hex_value(token[i]) * 16 + hex_value(token[i + 1])), now);
      }
    }
    relay.poll(now);
    Payload payload;
    switch (relay.plan(now, payload)) {
      case Relay::Action::kJoin:
        relay.join_result(true, data_rate, now);
        break;
      case Relay::Action::kSend:
        printf("UP %u %u ", now, payload.port);
        for (uint8_t i = 0; i < payload.size; ++i) printf("%02X", payload.bytes[i]);
        printf("\n");
        relay.uplink_result(payload.size, data_rate, payload, now);
        break;
      default:
        break;
    }
  }
  printf("END received=%u dropped=%u invalid=%u window=%u\n", relay.received(), relay.dropped(),
         relay.invalid(), relay.window_readings());
  return 0;
}
