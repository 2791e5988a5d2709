"""LoRaWAN 1.0.x data frames: build, parse, verify and decrypt, without I/O.

Why the receive side is three steps (``parse_frame`` -> ``verify_mic`` -> ``decrypt_payload``)
and not one:

- Parsing needs no keys, so a logger or forwarder can read the header of any frame.
- Only the 16 low bits of the frame counter travel on air, yet both the MIC and the keystream
  cover all 32. The high half is state that the receiver keeps (``reconstruct_fcnt``), so the
  MIC can only be checked once the caller says which counter it expects.
- A frame is decrypted only after its MIC verified: the plaintext of a forged or corrupted
  frame is noise that downstream decoders would otherwise happily misread.

``open_frame`` chains the three for the common case. Join and proprietary frames are out of
scope: devices on this project are activated elsewhere and only carry data frames.

The AES primitives come from ``cryptography`` (the optional ``lorawan`` extra); this is the
only module of the package that imports it.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

try:
    from cryptography.hazmat.primitives import cmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "lora_emotion.lorawan needs the 'cryptography' package (the 'lorawan' extra)",
        name=exc.name,
    ) from exc

from .errors import (
    DecodeError,
    EncodeError,
    PayloadTooLargeError,
    TruncatedPayloadError,
    VerificationError,
)

__all__ = [
    "KEY_SIZE",
    "MAX_FCNT_GAP",
    "MAX_FOPTS_SIZE",
    "MAX_FRM_PAYLOAD_SIZE",
    "MAX_PHY_PAYLOAD_SIZE",
    "MIN_PHY_PAYLOAD_SIZE",
    "DataFrame",
    "MType",
    "ParsedFrame",
    "build_frame",
    "decrypt_payload",
    "open_frame",
    "parse_frame",
    "reconstruct_fcnt",
    "verify_mic",
]

# AES-128 session keys (NwkSKey, AppSKey): LoRaWAN 1.0.4 §6.1.3-§6.1.4.
KEY_SIZE = 16
# MHDR 1 + FHDR without FOpts 7 + MIC 4: LoRaWAN 1.0.4 §4.1, §4.3.1.
MIN_PHY_PAYLOAD_SIZE = 12
# FOptsLen is the 4-bit low nibble of FCtrl: LoRaWAN 1.0.4 §4.3.1.6.
MAX_FOPTS_SIZE = 15
# Largest MACPayload of any EU868 data rate is M = 250 (DR4..DR7 without repeater): LoRaWAN
# Regional Parameters v1.0.3revA §2.2.6. MHDR 1 + M + MIC 4 = 255, the LoRa PHY ceiling.
MAX_MAC_PAYLOAD_SIZE = 250
MAX_PHY_PAYLOAD_SIZE = 1 + MAX_MAC_PAYLOAD_SIZE + 4
# N = M - FHDR 7 - FPort 1 without FOpts: the same table's N column (242).
MAX_FRM_PAYLOAD_SIZE = MAX_MAC_PAYLOAD_SIZE - 8
# LoRaWAN 1.0.3 §4.3.1.5 (dropped in 1.0.4); value from the EU863-870 default settings of
# Regional Parameters v1.0.3revA. Receivers still use it to tell a counter wrap from a replay.
MAX_FCNT_GAP = 16384

_FCNT16_MASK = 0xFFFF
_FCNT32_MAX = 0xFFFF_FFFF
_BLOCK = 16

_FCTRL_ADR = 0x80
_FCTRL_ADR_ACK_REQ = 0x40
_FCTRL_ACK = 0x20
_FCTRL_FPENDING = 0x10
_FCTRL_FOPTS_LEN = 0x0F

# Names of the MTypes this module refuses, for error messages (LoRaWAN 1.0.4 §4.2.1).
_UNSUPPORTED_MTYPES = {
    0: "join-request",
    1: "join-accept",
    6: "RFU (rejoin-request in LoRaWAN 1.1)",
    7: "proprietary",
}


class MType(enum.IntEnum):
    """The data-frame message types (MHDR bits 7..5, LoRaWAN 1.0.4 §4.2.1)."""

    UNCONFIRMED_UP = 2
    UNCONFIRMED_DOWN = 3
    CONFIRMED_UP = 4
    CONFIRMED_DOWN = 5

    @property
    def uplink(self) -> bool:
        """True for frames sent by the end-device."""
        return self in (MType.UNCONFIRMED_UP, MType.CONFIRMED_UP)

    @property
    def confirmed(self) -> bool:
        """True for frames the receiver must acknowledge."""
        return self in (MType.CONFIRMED_UP, MType.CONFIRMED_DOWN)


@dataclass(frozen=True, slots=True, kw_only=True)
class DataFrame:
    """A LoRaWAN 1.0.x data frame in plaintext, with its full 32-bit frame counter.

    Attributes:
        mtype: the message type.
        dev_addr: the 32-bit device address as a number (``0x260B1234``).
        fcnt: the full 32-bit frame counter; only its low 16 bits go on air.
        adr: FCtrl.ADR.
        adr_ack_req: FCtrl.ADRACKReq (uplink; RFU in downlinks).
        ack: FCtrl.ACK.
        fpending: FCtrl bit 4: FPending in downlinks, ClassB in uplinks (see ``class_b``).
        fopts: piggy-backed MAC commands, 0..15 bytes (sent in clear in LoRaWAN 1.0.x).
        fport: the port, or None when the frame has neither FPort nor FRMPayload.
        frm_payload: the plaintext FRMPayload (MAC commands when ``fport`` is 0).
        mic: the 4-byte MIC of a received frame; None for a frame still to be built.

    Raises:
        EncodeError: a field is out of range or the fields contradict each other.
        PayloadTooLargeError: FOpts, FRMPayload or the whole frame exceed their limits.
    """

    mtype: MType
    dev_addr: int
    fcnt: int
    adr: bool = False
    adr_ack_req: bool = False
    ack: bool = False
    fpending: bool = False
    fopts: bytes = b""
    fport: int | None = None
    frm_payload: bytes = b""
    mic: bytes | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mtype", MType(self.mtype))
        except ValueError:
            raise EncodeError(
                "only data frames (MType 2..5) are supported", field="mtype"
            ) from None
        if not _is_uint(self.dev_addr, 0xFFFF_FFFF):
            raise EncodeError("must be an integer that fits in 32 bits", field="dev_addr")
        if not _is_uint(self.fcnt, _FCNT32_MAX):
            raise EncodeError("must be a 32-bit unsigned counter", field="fcnt")
        for name in ("fopts", "frm_payload"):
            object.__setattr__(self, name, _as_bytes(getattr(self, name), name))
        if len(self.fopts) > MAX_FOPTS_SIZE:
            raise PayloadTooLargeError(field="fopts", size=len(self.fopts), limit=MAX_FOPTS_SIZE)
        if len(self.frm_payload) > MAX_FRM_PAYLOAD_SIZE:
            raise PayloadTooLargeError(
                field="frm_payload", size=len(self.frm_payload), limit=MAX_FRM_PAYLOAD_SIZE
            )
        if self.fport is None:
            if self.frm_payload:
                raise EncodeError("a non-empty FRMPayload needs an FPort", field="fport")
        elif not _is_uint(self.fport, 255):
            raise EncodeError("must be an integer 0..255", field="fport")
        elif self.fport == 0 and self.fopts:
            # LoRaWAN 1.0.4 §4.3.1.6: MAC commands go in FOpts or in an FPort-0 payload, never both.
            raise EncodeError("FPort 0 (MAC commands) cannot be combined with FOpts", field="fport")
        if self.mic is not None:
            object.__setattr__(self, "mic", _as_bytes(self.mic, "mic"))
            if len(self.mic) != 4:
                raise EncodeError("must be 4 bytes", field="mic")
        size = self.phy_size
        if size > MAX_PHY_PAYLOAD_SIZE:
            raise PayloadTooLargeError(field="PHYPayload", size=size, limit=MAX_PHY_PAYLOAD_SIZE)

    @property
    def uplink(self) -> bool:
        """True for frames sent by the end-device."""
        return self.mtype.uplink

    @property
    def class_b(self) -> bool:
        """The ClassB bit of an uplink (the same FCtrl bit as ``fpending``); False downlink."""
        return self.fpending and self.mtype.uplink

    @property
    def phy_size(self) -> int:
        """Length in bytes of this frame on air (PHYPayload)."""
        port = 0 if self.fport is None else 1
        return MIN_PHY_PAYLOAD_SIZE + len(self.fopts) + port + len(self.frm_payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFrame:
    """The structure of a received data frame, before any key is applied.

    Attributes:
        mtype: the message type.
        dev_addr: the device address as a number.
        adr, adr_ack_req, ack, fpending: the FCtrl flags (``fpending`` is ClassB in uplinks).
        fcnt16: the 16 low bits of the frame counter, as sent.
        fopts: the FOpts bytes.
        fport: the port, or None when absent.
        frm_payload: the FRMPayload as sent, still encrypted.
        mic: the 4-byte MIC as sent.
        phy: the whole frame (the MIC covers all of it except the last 4 bytes).
    """

    mtype: MType
    dev_addr: int
    adr: bool
    adr_ack_req: bool
    ack: bool
    fpending: bool
    fcnt16: int
    fopts: bytes
    fport: int | None
    frm_payload: bytes
    mic: bytes
    phy: bytes = field(repr=False)

    @property
    def uplink(self) -> bool:
        """True for frames sent by the end-device."""
        return self.mtype.uplink


def parse_frame(phy: bytes) -> ParsedFrame:
    """Split a PHYPayload into its fields; no key needed, nothing decrypted.

    Args:
        phy: the frame as received from the radio (MHDR through MIC).

    Returns:
        The frame's fields, FRMPayload still encrypted.

    Raises:
        TruncatedPayloadError: the frame is shorter than its header or its FOpts claim.
        DecodeError: not a LoRaWAN R1 data frame (join, proprietary, other major version),
            longer than a LoRa PHY payload can be, or FPort 0 together with FOpts.
    """
    # memoryview() refuses ints, which bytes() would silently turn into zero-filled frames.
    phy = bytes(memoryview(phy))
    if not phy:
        raise TruncatedPayloadError(field="MHDR", expected=1, got=0, offset=0)
    mhdr = phy[0]
    mtype_value = mhdr >> 5
    if mtype_value in _UNSUPPORTED_MTYPES:
        name = _UNSUPPORTED_MTYPES[mtype_value]
        raise DecodeError(
            f"unsupported MType {mtype_value} ({name}): only data frames are handled",
            field="MHDR",
            offset=0,
        )
    major = mhdr & 0x03
    if major != 0:
        raise DecodeError(f"major version {major} is not LoRaWAN R1 (0)", field="MHDR", offset=0)
    if len(phy) < MIN_PHY_PAYLOAD_SIZE:
        raise TruncatedPayloadError(
            field="PHYPayload", expected=MIN_PHY_PAYLOAD_SIZE, got=len(phy), offset=0
        )
    if len(phy) > MAX_PHY_PAYLOAD_SIZE:
        raise DecodeError(
            f"frame of {len(phy)} bytes is longer than the {MAX_PHY_PAYLOAD_SIZE}-byte "
            "maximum PHYPayload",
            field="PHYPayload",
            offset=MAX_PHY_PAYLOAD_SIZE,
        )
    dev_addr, fctrl, fcnt16 = struct.unpack_from("<IBH", phy, 1)
    fopts_len = fctrl & _FCTRL_FOPTS_LEN
    fopts_end = 8 + fopts_len
    mic_start = len(phy) - 4
    if fopts_end > mic_start:
        raise TruncatedPayloadError(field="FOpts", expected=fopts_len, got=mic_start - 8, offset=8)
    fport: int | None = None
    frm_payload = b""
    if fopts_end < mic_start:
        fport = phy[fopts_end]
        frm_payload = phy[fopts_end + 1 : mic_start]
        if fport == 0 and fopts_len:
            raise DecodeError(
                f"FPort 0 with {fopts_len} bytes of FOpts is invalid: MAC commands go in "
                "FOpts or in an FPort-0 payload, never both",
                field="FPort",
                offset=fopts_end,
            )
    return ParsedFrame(
        mtype=MType(mtype_value),
        dev_addr=dev_addr,
        adr=bool(fctrl & _FCTRL_ADR),
        adr_ack_req=bool(fctrl & _FCTRL_ADR_ACK_REQ),
        ack=bool(fctrl & _FCTRL_ACK),
        fpending=bool(fctrl & _FCTRL_FPENDING),
        fcnt16=fcnt16,
        fopts=phy[8:fopts_end],
        fport=fport,
        frm_payload=frm_payload,
        mic=phy[mic_start:],
        phy=phy,
    )


def reconstruct_fcnt(fcnt16: int, last_fcnt32: int | None, *, max_gap: int = MAX_FCNT_GAP) -> int:
    """Extend the 16 frame-counter bits on air to the full 32-bit counter.

    The result is the smallest counter not below ``last_fcnt32`` whose low 16 bits are
    ``fcnt16``, so a wrap of the low half (0xFFFF -> 0x0000) carries into the high half.
    A repeat of the last counter is returned as is: LoRaWAN 1.0.x repeats a counter for
    NbTrans retransmissions, and deduplication is the caller's business.

    Args:
        fcnt16: the counter bits from the frame, 0..65535.
        last_fcnt32: the last 32-bit counter accepted for this device and direction, or
            None for the first frame of a session (then the high half is 0).
        max_gap: the largest accepted advance over ``last_fcnt32`` (MAX_FCNT_GAP).

    Returns:
        The 32-bit frame counter.

    Raises:
        VerificationError: the advance exceeds ``max_gap`` (lost sync or a replayed old
            frame) or the counter would pass 2**32 - 1 (the session must be renewed).
        EncodeError: an argument is out of range.
    """
    if not 0 <= fcnt16 <= _FCNT16_MASK:
        raise EncodeError("must be 0..65535", field="fcnt16")
    if not 0 <= max_gap <= _FCNT16_MASK:
        raise EncodeError("must be 0..65535", field="max_gap")
    if last_fcnt32 is None:
        return fcnt16
    if not 0 <= last_fcnt32 <= _FCNT32_MAX:
        raise EncodeError("must be a 32-bit unsigned counter", field="last_fcnt")
    candidate = (last_fcnt32 & ~_FCNT16_MASK) | fcnt16
    if candidate < last_fcnt32:
        candidate += _FCNT16_MASK + 1
    gap = candidate - last_fcnt32
    if gap > max_gap:
        raise VerificationError(
            f"frame counter gap {gap} exceeds the maximum {max_gap} "
            f"(last counter {last_fcnt32}, {fcnt16:#06x} on air): frames lost or a replay"
        )
    if candidate > _FCNT32_MAX:
        raise VerificationError(
            "frame counter would pass 2**32 - 1: the session keys must be renewed"
        )
    return candidate


def verify_mic(parsed: ParsedFrame, *, nwk_s_key: bytes, fcnt_full: int) -> None:
    """Check the frame's MIC (AES-CMAC with NwkSKey over B0 | MHDR..FRMPayload).

    Args:
        parsed: the frame from ``parse_frame``.
        nwk_s_key: the 16-byte network session key.
        fcnt_full: the 32-bit frame counter the frame is believed to carry (see
            ``reconstruct_fcnt``); its low 16 bits must equal ``parsed.fcnt16``.

    Raises:
        VerificationError: the MIC does not match ("MIC mismatch: ...") or ``fcnt_full``
            does not end in the counter bits of the frame.
        EncodeError: the key is not 16 bytes or ``fcnt_full`` is not a 32-bit counter.
    """
    _check_key(nwk_s_key, "nwk_s_key")
    _check_fcnt_full(parsed, fcnt_full)
    expected = _mic(
        nwk_s_key,
        uplink=parsed.uplink,
        dev_addr=parsed.dev_addr,
        fcnt=fcnt_full,
        msg=parsed.phy[:-4],
    )
    if expected != parsed.mic:
        # Only what the frame carried is named; the computed MIC would be an oracle.
        raise VerificationError(
            f"MIC mismatch: frame MIC {parsed.mic.hex()} does not verify with the given "
            f"NwkSKey at frame counter {fcnt_full} (wrong key, wrong counter, or altered frame)"
        )


def decrypt_payload(
    parsed: ParsedFrame, *, nwk_s_key: bytes, app_s_key: bytes, fcnt_full: int
) -> bytes:
    """Decrypt the FRMPayload (AppSKey for FPort > 0, NwkSKey for FPort 0).

    Call it only after ``verify_mic`` succeeded: without the MIC nothing proves the result
    is the sender's plaintext.

    Args:
        parsed: the frame from ``parse_frame``.
        nwk_s_key: the 16-byte network session key.
        app_s_key: the 16-byte application session key.
        fcnt_full: the 32-bit frame counter (low 16 bits equal to ``parsed.fcnt16``).

    Returns:
        The plaintext FRMPayload (empty when the frame has none).

    Raises:
        VerificationError: ``fcnt_full`` does not end in the counter bits of the frame.
        EncodeError: a key is not 16 bytes or ``fcnt_full`` is not a 32-bit counter.
    """
    _check_key(nwk_s_key, "nwk_s_key")
    _check_key(app_s_key, "app_s_key")
    _check_fcnt_full(parsed, fcnt_full)
    if parsed.fport is None:
        return b""
    return _crypt(
        nwk_s_key if parsed.fport == 0 else app_s_key,
        uplink=parsed.uplink,
        dev_addr=parsed.dev_addr,
        fcnt=fcnt_full,
        data=parsed.frm_payload,
    )


def open_frame(
    phy: bytes, *, nwk_s_key: bytes, app_s_key: bytes, last_fcnt: int | None = None
) -> DataFrame:
    """Parse, check and decrypt a received frame in one call.

    Args:
        phy: the frame as received.
        nwk_s_key: the 16-byte network session key.
        app_s_key: the 16-byte application session key.
        last_fcnt: the last 32-bit counter accepted from this device in this direction,
            or None for the first frame of a session (counter high half taken as 0).

    Returns:
        The plaintext frame with its reconstructed 32-bit ``fcnt`` and its ``mic``.

    Raises:
        DecodeError: the bytes are not a LoRaWAN 1.0.x data frame (TruncatedPayloadError
            when cut short).
        VerificationError: the counter jumped too far, or the MIC does not verify.
        EncodeError: a key is not 16 bytes or ``last_fcnt`` is out of range.
    """
    _check_key(nwk_s_key, "nwk_s_key")
    _check_key(app_s_key, "app_s_key")
    if last_fcnt is not None and not 0 <= last_fcnt <= _FCNT32_MAX:
        raise EncodeError("must be a 32-bit unsigned counter", field="last_fcnt")
    parsed = parse_frame(phy)
    fcnt = reconstruct_fcnt(parsed.fcnt16, last_fcnt)
    verify_mic(parsed, nwk_s_key=nwk_s_key, fcnt_full=fcnt)
    plaintext = decrypt_payload(parsed, nwk_s_key=nwk_s_key, app_s_key=app_s_key, fcnt_full=fcnt)
    return DataFrame(
        mtype=parsed.mtype,
        dev_addr=parsed.dev_addr,
        fcnt=fcnt,
        adr=parsed.adr,
        adr_ack_req=parsed.adr_ack_req,
        ack=parsed.ack,
        fpending=parsed.fpending,
        fopts=parsed.fopts,
        fport=parsed.fport,
        frm_payload=plaintext,
        mic=parsed.mic,
    )


def build_frame(frame: DataFrame, *, nwk_s_key: bytes, app_s_key: bytes) -> bytes:
    """Encrypt the FRMPayload, compute the MIC and lay the frame out for the radio.

    Args:
        frame: the plaintext frame; its ``mic`` (if any) is ignored and recomputed.
        nwk_s_key: the 16-byte network session key (MIC, and FRMPayload when FPort is 0).
        app_s_key: the 16-byte application session key (FRMPayload when FPort > 0).

    Returns:
        The PHYPayload, MHDR through MIC.

    Raises:
        EncodeError: a key is not 16 bytes (field names the key, never its value).
    """
    _check_key(nwk_s_key, "nwk_s_key")
    _check_key(app_s_key, "app_s_key")
    uplink = frame.mtype.uplink
    fctrl = (
        (_FCTRL_ADR if frame.adr else 0)
        | (_FCTRL_ADR_ACK_REQ if frame.adr_ack_req else 0)
        | (_FCTRL_ACK if frame.ack else 0)
        | (_FCTRL_FPENDING if frame.fpending else 0)
        | len(frame.fopts)
    )
    parts = [
        struct.pack("<BIBH", frame.mtype << 5, frame.dev_addr, fctrl, frame.fcnt & _FCNT16_MASK),
        frame.fopts,
    ]
    if frame.fport is not None:
        parts.append(bytes((frame.fport,)))
        parts.append(
            _crypt(
                nwk_s_key if frame.fport == 0 else app_s_key,
                uplink=uplink,
                dev_addr=frame.dev_addr,
                fcnt=frame.fcnt,
                data=frame.frm_payload,
            )
        )
    msg = b"".join(parts)
    return msg + _mic(nwk_s_key, uplink=uplink, dev_addr=frame.dev_addr, fcnt=frame.fcnt, msg=msg)


def _is_uint(value: object, limit: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _as_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise EncodeError("must be bytes", field=name)
    return bytes(value)


def _check_key(key: bytes, name: str) -> None:
    # The message names the parameter and the length only: keys must never reach logs.
    if not isinstance(key, bytes | bytearray | memoryview):
        raise EncodeError("must be bytes", field=name)
    if len(key) != KEY_SIZE:
        raise EncodeError(f"must be {KEY_SIZE} bytes (AES-128), got {len(key)}", field=name)


def _check_fcnt_full(parsed: ParsedFrame, fcnt_full: int) -> None:
    if not 0 <= fcnt_full <= _FCNT32_MAX:
        raise EncodeError("must be a 32-bit unsigned counter", field="fcnt_full")
    if fcnt_full & _FCNT16_MASK != parsed.fcnt16:
        raise VerificationError(
            f"frame counter {fcnt_full} does not end in the frame's {parsed.fcnt16:#06x}"
        )


def _block(prefix: int, *, uplink: bool, dev_addr: int, fcnt: int, last: int) -> bytes:
    # A_i and B_0 share this layout (LoRaWAN 1.0.4 §4.3.3.1 and §4.4): tag, 4 zero bytes,
    # Dir (0 up, 1 down), DevAddr, the 32-bit FCnt, a zero byte, then i or len(msg).
    return struct.pack("<B4xBIIxB", prefix, 0 if uplink else 1, dev_addr, fcnt, last)


def _crypt(key: bytes, *, uplink: bool, dev_addr: int, fcnt: int, data: bytes) -> bytes:
    # A counter-mode keystream built from ECB over the A_i blocks; XOR makes it its own inverse.
    if not data:
        return b""
    blocks = b"".join(
        _block(0x01, uplink=uplink, dev_addr=dev_addr, fcnt=fcnt, last=i)
        for i in range(1, (len(data) + _BLOCK - 1) // _BLOCK + 1)
    )
    encryptor = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
    stream = encryptor.update(blocks) + encryptor.finalize()
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def _mic(key: bytes, *, uplink: bool, dev_addr: int, fcnt: int, msg: bytes) -> bytes:
    b0 = _block(0x49, uplink=uplink, dev_addr=dev_addr, fcnt=fcnt, last=len(msg))
    mac = cmac.CMAC(algorithms.AES(bytes(key)))
    mac.update(b0 + msg)
    return mac.finalize()[:4]
