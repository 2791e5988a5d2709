"""Network adapters: what each LoRaWAN network server POSTs, turned into the same uplinks.

``kpn`` (KPN Things SenML deliveries), ``ttn`` (The Things Stack webhooks) and ``chirpstack``
(ChirpStack's HTTP integration) are sans-IO: bytes and headers in, a
:class:`~lora_emotion.networks.uplink.NetworkUplink` (or KPN's resolved delivery) or a project
error naming the field out. The webhook runs every one of them through the same pipeline.
"""

from .uplink import NETWORKS as NETWORKS
from .uplink import Network as Network
from .uplink import NetworkUplink as NetworkUplink
from .uplink import OtherEvent as OtherEvent
from .uplink import RadioMetadata as RadioMetadata
from .uplink import delivery_of as delivery_of
from .uplink import dev_eui_urn as dev_eui_urn
