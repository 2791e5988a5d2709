"""Each network's request checks: credentials, media type, then its sans-IO adapter.

The ingest pipeline (``ingest.py``) is the same for every network: limits, this adapter, the
group commit, the answer, metrics. What differs is here: KPN signs every body with a shared
secret chosen by the ``Things-Plug-UUID`` header; The Things Stack and ChirpStack sign nothing
and send a static token the user configured as a header of the webhook or integration, which
is compared with every token of every configured application before the body is parsed. The
body then names its application, and a token of another application is refused (403), as is an
application that is not configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import parse_qs

from lora_emotion.errors import VerificationError
from lora_emotion.labels import LabelRegistry
from lora_emotion.networks import Network, NetworkUplink, delivery_of
from lora_emotion.networks.chirpstack import parse_event
from lora_emotion.networks.credentials import ApplicationTokens, presented_token
from lora_emotion.networks.kpn import Delivery, parse_delivery, verify_token
from lora_emotion.networks.ttn import parse_message

from .errors import UnknownDestinationError, UnsupportedMediaTypeError

if TYPE_CHECKING:  # config imports the alerts, which import the store, which imports config
    from .config import Settings

__all__ = [
    "JSON_MEDIA_TYPES",
    "Adapted",
    "ChirpStackAdapter",
    "KpnAdapter",
    "NetworkAdapter",
    "TtnAdapter",
    "adapter_for",
]

JSON_MEDIA_TYPES = frozenset({"application/json", "application/senml+json"})
_PROTOBUF_MEDIA_TYPES = frozenset({"application/octet-stream", "application/x-protobuf"})


class Adapted(NamedTuple):
    """A verified request taken apart.

    Attributes:
        network: who sent it.
        source: the KPN destination (``Things-Plug-UUID``) or the network's application id;
            stored in the ``plug_uuid`` column.
        delivery: what to store, or ``None`` for a message that is no uplink.
        event: the network's name for a message that is no uplink (``join``, ``txack`` ...).
        metadata: what the network said about the uplink beyond its payload (counter, radio,
            simulation flag), stored beside the delivery.
    """

    network: Network
    source: str
    delivery: Delivery | None
    event: str | None = None
    metadata: dict[str, Any] | None = None


class NetworkAdapter(Protocol):
    """Verifies and takes apart one network's requests."""

    network: Network

    def check_media_type(self, headers: Mapping[bytes, bytes]) -> None:
        """Refuse a body this network does not send, before it is read.

        Raises:
            UnsupportedMediaTypeError: 415.
        """
        ...

    def adapt(
        self,
        headers: Mapping[bytes, bytes],
        body: bytes,
        query: bytes,
        *,
        now: float,
        registry: LabelRegistry,
    ) -> Adapted:
        """Check the request's credentials, then take the body apart.

        Raises:
            LoraEmotionError: 401 for missing or wrong credentials, 403 for an unknown
                destination or application, 422 for a body that does not parse (naming the
                field).
        """
        ...


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _media_type(headers: Mapping[bytes, bytes]) -> str:
    return (_text(headers.get(b"content-type")) or "").split(";", 1)[0].strip().lower()


def _require_json(headers: Mapping[bytes, bytes], sender: str, *, protobuf_hint: str = "") -> None:
    media_type = _media_type(headers)
    if media_type in JSON_MEDIA_TYPES:
        return
    shown = media_type or "none"
    hint = protobuf_hint if media_type in _PROTOBUF_MEDIA_TYPES else ""
    raise UnsupportedMediaTypeError(
        f"Content-Type {shown!r} is not supported; {sender} sends application/json{hint}"
    )


class KpnAdapter:
    """KPN Things: ``Things-Message-Token`` = SHA-256(body || secret of the destination)."""

    network: Network = "kpn"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def check_media_type(self, headers: Mapping[bytes, bytes]) -> None:
        _require_json(headers, "KPN")

    def adapt(
        self,
        headers: Mapping[bytes, bytes],
        body: bytes,
        query: bytes,
        *,
        now: float,
        registry: LabelRegistry,
    ) -> Adapted:
        plug = _text(headers.get(b"things-plug-uuid"))
        token = _text(headers.get(b"things-message-token"))
        if not plug:
            raise VerificationError("missing Things-Plug-UUID header")
        if not token:
            raise VerificationError("missing Things-Message-Token header")
        secrets = self._settings.secrets_for(plug)
        if not secrets:
            raise UnknownDestinationError("Things-Plug-UUID names no configured destination")
        if not verify_token(body, token, secrets):
            raise VerificationError(
                "Things-Message-Token does not match the body under any secret of this destination"
            )
        delivery = parse_delivery(body, now=now, registry=registry)
        return Adapted("kpn", plug.strip().lower(), delivery)


class _TokenAdapter:
    """The Things Stack and ChirpStack: a static token per application, in a header."""

    network: Network
    _what: str

    def __init__(self, tokens: Mapping[str, list[str]]) -> None:
        self._applications_known = frozenset(tokens)
        self._tokens = ApplicationTokens(tokens)

    def _applications(self, headers: Mapping[bytes, bytes]) -> frozenset[str]:
        token = presented_token(
            _text(headers.get(b"authorization")), _text(headers.get(b"x-api-key"))
        )
        if token is None:
            raise VerificationError(
                "missing credentials: send the application's token as "
                "'Authorization: Bearer <token>' or 'X-API-Key: <token>'"
            )
        if not self._tokens:
            raise UnknownDestinationError(f"no {self._what} application is configured")
        applications = self._tokens.matching(token)
        if not applications:
            raise VerificationError(
                f"the token is not one of any configured {self._what} application"
            )
        return applications

    def _check_application(self, application: str | None, allowed: frozenset[str]) -> str:
        key = (application or "").strip().lower()
        if key not in self._applications_known:
            raise UnknownDestinationError(
                f"application {application!r} is not a configured {self._what} application"
            )
        if key not in allowed:
            raise UnknownDestinationError(
                f"the token is not one of application {application!r}'s tokens"
            )
        return key

    def _adapted(
        self,
        adapted: NetworkUplink | Any,
        allowed: frozenset[str],
        *,
        now: float,
        registry: LabelRegistry,
    ) -> Adapted:
        if not isinstance(adapted, NetworkUplink):
            source = (
                self._check_application(adapted.application, allowed)
                if adapted.application is not None
                else min(allowed)
            )
            return Adapted(self.network, source, None, event=adapted.event)
        source = self._check_application(adapted.application, allowed)
        delivery = delivery_of(adapted, now=now, registry=registry)
        return Adapted(self.network, source, delivery, metadata=adapted.metadata())


class TtnAdapter(_TokenAdapter):
    """The Things Stack: application webhooks, uplink messages stored, the others counted."""

    network: Network = "ttn"
    _what = "The Things Stack"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.network_tokens("ttn"))

    def check_media_type(self, headers: Mapping[bytes, bytes]) -> None:
        _require_json(headers, "The Things Stack")

    def adapt(
        self,
        headers: Mapping[bytes, bytes],
        body: bytes,
        query: bytes,
        *,
        now: float,
        registry: LabelRegistry,
    ) -> Adapted:
        allowed = self._applications(headers)
        return self._adapted(parse_message(body, now=now), allowed, now=now, registry=registry)


class ChirpStackAdapter(_TokenAdapter):
    """ChirpStack: the HTTP integration's events, ``up`` stored, the others counted."""

    network: Network = "chirpstack"
    _what = "ChirpStack"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.network_tokens("chirpstack"))

    def check_media_type(self, headers: Mapping[bytes, bytes]) -> None:
        _require_json(
            headers,
            "ChirpStack's JSON marshaler",
            protobuf_hint=" (choose the JSON marshaler in the HTTP integration: the protobuf "
            "one is not supported)",
        )

    def adapt(
        self,
        headers: Mapping[bytes, bytes],
        body: bytes,
        query: bytes,
        *,
        now: float,
        registry: LabelRegistry,
    ) -> Adapted:
        allowed = self._applications(headers)
        # ChirpStack writes exactly "event=up"; anything else is parsed properly.
        if query == b"event=up":
            event: str | None = "up"
        else:
            values = parse_qs(query.decode("latin-1")).get("event")
            event = values[0] if values else None
        adapted = parse_event(body, event=event, now=now)
        return self._adapted(adapted, allowed, now=now, registry=registry)


def adapter_for(network: Network, settings: Settings) -> NetworkAdapter:
    """The adapter of ``network`` under ``settings``."""
    if network == "ttn":
        return TtnAdapter(settings)
    if network == "chirpstack":
        return ChirpStackAdapter(settings)
    return KpnAdapter(settings)
