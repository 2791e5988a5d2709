"""lora_emotion: emotion readings over LoRaWAN in the fewest bytes the information allows.

The codec is sans-IO: pure functions and frozen dataclasses between bytes and values. The
webhook (``lora_emotion.webhook``), LoRaWAN frames (``lora_emotion.lorawan``, needs the
``lorawan`` extra) and the serial tools are separate modules that wrap it.
"""

from .airtime import EU868_DATA_RATES as EU868_DATA_RATES
from .airtime import DataRate as DataRate
from .airtime import max_payload as max_payload
from .airtime import time_on_air_ms as time_on_air_ms
from .airtime import time_on_air_us as time_on_air_us
from .budget import AirtimeLedger as AirtimeLedger
from .budget import Plan as Plan
from .budget import plan as plan
from .errors import DecodeError as DecodeError
from .errors import EncodeError as EncodeError
from .errors import LoraEmotionError as LoraEmotionError
from .errors import PayloadTooLargeError as PayloadTooLargeError
from .errors import TruncatedPayloadError as TruncatedPayloadError
from .errors import VerificationError as VerificationError
from .labels import BUILTIN_SETS as BUILTIN_SETS
from .labels import DEFAULT_REGISTRY as DEFAULT_REGISTRY
from .labels import FER2013 as FER2013
from .labels import FERPLUS as FERPLUS
from .labels import PHYSIO3 as PHYSIO3
from .labels import RAVDESS as RAVDESS
from .labels import TESS as TESS
from .labels import VALENCE3 as VALENCE3
from .labels import LabelRegistry as LabelRegistry
from .labels import LabelSet as LabelSet
from .labels import parse_label_sets as parse_label_sets
from .messages import MAX_PAYLOAD as MAX_PAYLOAD
from .messages import Batch as Batch
from .messages import BatchEntry as BatchEntry
from .messages import CommandStatus as CommandStatus
from .messages import Distribution as Distribution
from .messages import Face as Face
from .messages import Faces as Faces
from .messages import Message as Message
from .messages import Mode as Mode
from .messages import Reading as Reading
from .messages import Status as Status
from .messages import Summary as Summary
from .messages import Vitals as Vitals
from .messages import decode as decode
from .messages import encode as encode
from .messages import port_of as port_of
from .messages import split_batch as split_batch
from .senml import Record as Record
from .senml import ResolvedRecord as ResolvedRecord
from .uplink import decode_uplink as decode_uplink
from .uplink import message_records as message_records

__version__ = "0.1.0"

__all__ = [
    "BUILTIN_SETS",
    "DEFAULT_REGISTRY",
    "EU868_DATA_RATES",
    "FER2013",
    "FERPLUS",
    "MAX_PAYLOAD",
    "PHYSIO3",
    "RAVDESS",
    "TESS",
    "VALENCE3",
    "AirtimeLedger",
    "Batch",
    "BatchEntry",
    "CommandStatus",
    "DataRate",
    "DecodeError",
    "Distribution",
    "EncodeError",
    "Face",
    "Faces",
    "LabelRegistry",
    "LabelSet",
    "LoraEmotionError",
    "Message",
    "Mode",
    "PayloadTooLargeError",
    "Plan",
    "Reading",
    "Record",
    "ResolvedRecord",
    "Status",
    "Summary",
    "TruncatedPayloadError",
    "VerificationError",
    "Vitals",
    "decode",
    "decode_uplink",
    "encode",
    "max_payload",
    "message_records",
    "parse_label_sets",
    "plan",
    "port_of",
    "split_batch",
    "time_on_air_ms",
    "time_on_air_us",
]
