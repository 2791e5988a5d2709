"""Tests for lora_emotion.lorawan: LoRaWAN 1.0.x data frames."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
from typing import TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_emotion.errors import (
    DecodeError,
    EncodeError,
    PayloadTooLargeError,
    TruncatedPayloadError,
    VerificationError,
)
from lora_emotion.lorawan import (
    MAX_FCNT_GAP,
    MAX_FRM_PAYLOAD_SIZE,
    MAX_PHY_PAYLOAD_SIZE,
    DataFrame,
    MType,
    build_frame,
    decrypt_payload,
    open_frame,
    parse_frame,
    reconstruct_fcnt,
    verify_mic,
)

NWK = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
APP = bytes.fromhex("f0e0d0c0b0a090807060504030201000")


class Keys(TypedDict):
    nwk_s_key: bytes
    app_s_key: bytes


KEYS: Keys = {"nwk_s_key": NWK, "app_s_key": APP}


def _frame(**overrides: object) -> DataFrame:
    fields: dict[str, object] = {
        "mtype": MType.UNCONFIRMED_UP,
        "dev_addr": 0x260B1234,
        "fcnt": 7,
        "fport": 5,
        "frm_payload": b"\x01\x02\x03",
    }
    fields.update(overrides)
    return DataFrame(**fields)  # type: ignore[arg-type]


# --- published vectors -------------------------------------------------------------------


def test_lora_packet_readme_vector() -> None:
    """The decoding example of the lora-packet README (0.9.3): payload "test", FCnt 2."""
    phy = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")
    nwk = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")
    app = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")
    parsed = parse_frame(phy)
    assert parsed.mtype is MType.UNCONFIRMED_UP
    assert parsed.dev_addr == 0x49BE7DF1
    assert parsed.fcnt16 == 2
    assert parsed.fport == 1
    assert parsed.frm_payload == bytes.fromhex("95437876")
    assert parsed.mic == bytes.fromhex("2B11FF0D")
    frame = open_frame(phy, nwk_s_key=nwk, app_s_key=app)
    assert frame.frm_payload == b"test"
    assert build_frame(frame, nwk_s_key=nwk, app_s_key=app) == phy


def test_brocaar_lorawan_uplink_vector() -> None:
    """brocaar/lorawan's PHYPayload test: ADR uplink, FCnt 1, FPort 1, "hello"."""
    phy = base64.b64decode("QAQDAgGAAQABppRkJhXWw7WC")
    keys: Keys = {"nwk_s_key": bytes([2] * 16), "app_s_key": bytes([1] * 16)}
    frame = open_frame(phy, **keys)
    assert frame == DataFrame(
        mtype=MType.UNCONFIRMED_UP,
        dev_addr=0x01020304,
        fcnt=1,
        adr=True,
        fport=1,
        frm_payload=b"hello",
        mic=phy[-4:],
    )
    assert build_frame(frame, **keys) == phy


def test_brocaar_lorawan_confirmed_uplink_example() -> None:
    """brocaar/lorawan's NewPHYPayload example: confirmed uplink, FCnt 0, FPort 10."""
    frame = DataFrame(
        mtype=MType.CONFIRMED_UP, dev_addr=0x01020304, fcnt=0, fport=10, frm_payload=b"\1\2\3\4"
    )
    phy = build_frame(frame, nwk_s_key=bytes(range(1, 17)), app_s_key=bytes(range(16, 0, -1)))
    assert list(phy) == [128, 4, 3, 2, 1, 0, 0, 0, 10, 226, 100, 212, 247, 181, 106, 14, 117]


# --- layout ------------------------------------------------------------------------------


def test_header_layout_is_little_endian_with_fctrl_bits() -> None:
    frame = _frame(
        mtype=MType.CONFIRMED_DOWN,
        fcnt=0x0001_ABCD,
        adr=True,
        ack=True,
        fpending=True,
        fopts=b"\x02",
        fport=9,
        frm_payload=b"",
    )
    phy = build_frame(frame, **KEYS)
    assert phy[0] == 0xA0  # MType 5 << 5, major 0
    assert phy[1:5] == bytes.fromhex("34120B26")
    assert phy[5] == 0x80 | 0x20 | 0x10 | 1
    assert phy[6:8] == bytes.fromhex("CDAB")  # only the low 16 bits travel
    assert phy[8:9] == b"\x02"
    assert phy[9] == 9
    assert len(phy) == frame.phy_size == 14


def test_frame_without_port_is_header_and_mic_only() -> None:
    phy = build_frame(_frame(fport=None, frm_payload=b"", fopts=b"\x02"), **KEYS)
    parsed = parse_frame(phy)
    assert len(phy) == 13
    assert parsed.fport is None
    assert parsed.frm_payload == b""
    assert open_frame(phy, **KEYS).fport is None


def test_class_b_is_the_uplink_reading_of_fpending() -> None:
    assert _frame(fpending=True).class_b
    assert not _frame(mtype=MType.UNCONFIRMED_DOWN, fpending=True).class_b


def test_mtype_properties() -> None:
    assert [m.uplink for m in MType] == [True, False, True, False]
    assert [m.confirmed for m in MType] == [False, False, True, True]


# --- round trips --------------------------------------------------------------------------

frames = st.builds(
    DataFrame,
    mtype=st.sampled_from(MType),
    dev_addr=st.integers(0, 0xFFFF_FFFF),
    fcnt=st.integers(0, 0xFFFF_FFFF),
    adr=st.booleans(),
    adr_ack_req=st.booleans(),
    ack=st.booleans(),
    fpending=st.booleans(),
    fopts=st.binary(max_size=15),
    fport=st.integers(1, 255),
    frm_payload=st.binary(max_size=MAX_PHY_PAYLOAD_SIZE - 12 - 15 - 1),
)


@given(frames, st.integers(0, MAX_FCNT_GAP))
def test_build_then_open_round_trips(frame: DataFrame, gap: int) -> None:
    phy = build_frame(frame, **KEYS)
    last = max(frame.fcnt - gap, 0) if frame.fcnt > 0xFFFF else None
    opened = open_frame(phy, last_fcnt=last, **KEYS)
    assert opened == DataFrame(
        mtype=frame.mtype,
        dev_addr=frame.dev_addr,
        fcnt=frame.fcnt,
        adr=frame.adr,
        adr_ack_req=frame.adr_ack_req,
        ack=frame.ack,
        fpending=frame.fpending,
        fopts=frame.fopts,
        fport=frame.fport,
        frm_payload=frame.frm_payload,
        mic=phy[-4:],
    )
    assert build_frame(opened, **KEYS) == phy


@given(st.binary(min_size=1, max_size=MAX_FRM_PAYLOAD_SIZE))
def test_payload_is_encrypted_on_air(payload: bytes) -> None:
    phy = build_frame(_frame(frm_payload=payload), **KEYS)
    # Same length (a stream cipher), different bytes unless the keystream happens to be 0.
    assert len(parse_frame(phy).frm_payload) == len(payload)
    assert parse_frame(phy).frm_payload != payload or len(payload) <= 2


def test_fport_0_is_encrypted_with_nwkskey() -> None:
    frame = _frame(fport=0, frm_payload=b"\x02\x03")
    phy = build_frame(frame, **KEYS)
    # Any AppSKey opens it: only the NwkSKey is involved.
    assert open_frame(phy, nwk_s_key=NWK, app_s_key=bytes(16)).frm_payload == b"\x02\x03"
    other = build_frame(frame, nwk_s_key=NWK, app_s_key=bytes(16))
    assert other == phy


def test_fport_above_0_is_encrypted_with_appskey() -> None:
    phy = build_frame(_frame(), **KEYS)
    parsed = parse_frame(phy)
    wrong = decrypt_payload(parsed, nwk_s_key=NWK, app_s_key=bytes(16), fcnt_full=7)
    assert wrong != b"\x01\x02\x03"


def test_direction_changes_mic_and_keystream() -> None:
    up = build_frame(_frame(mtype=MType.UNCONFIRMED_UP), **KEYS)
    down = build_frame(_frame(mtype=MType.UNCONFIRMED_DOWN), **KEYS)
    assert up[1:8] == down[1:8]
    assert up[9:12] != down[9:12]
    assert up[-4:] != down[-4:]


# --- frame counters -----------------------------------------------------------------------


def test_high_counter_bits_count_in_mic_and_keystream() -> None:
    low = build_frame(_frame(fcnt=0x0000_0005), **KEYS)
    high = build_frame(_frame(fcnt=0x0001_0005), **KEYS)
    assert low[:8] == high[:8]
    assert low[-4:] != high[-4:]
    assert low[9:-4] != high[9:-4]


def test_open_without_last_counter_fails_above_16_bits() -> None:
    phy = build_frame(_frame(fcnt=0x0003_0010), **KEYS)
    with pytest.raises(VerificationError, match="MIC mismatch"):
        open_frame(phy, **KEYS)
    assert open_frame(phy, last_fcnt=0x0002_FFF0, **KEYS).fcnt == 0x0003_0010


def test_three_step_api_with_explicit_counter() -> None:
    phy = build_frame(_frame(fcnt=0x1234_5678), **KEYS)
    parsed = parse_frame(phy)
    verify_mic(parsed, nwk_s_key=NWK, fcnt_full=0x1234_5678)
    assert decrypt_payload(parsed, fcnt_full=0x1234_5678, **KEYS) == b"\x01\x02\x03"
    with pytest.raises(VerificationError, match="MIC mismatch"):
        verify_mic(parsed, nwk_s_key=NWK, fcnt_full=0x1235_5678)
    with pytest.raises(VerificationError, match="does not end in"):
        verify_mic(parsed, nwk_s_key=NWK, fcnt_full=0x1234_5679)
    with pytest.raises(EncodeError, match="fcnt_full"):
        decrypt_payload(parsed, fcnt_full=-1, **KEYS)


@pytest.mark.parametrize(
    ("fcnt16", "last", "expected"),
    [
        (0, None, 0),
        (0xFFFF, None, 0xFFFF),
        (10, 9, 10),
        (10, 10, 10),  # NbTrans repeat
        (0x0003, 0x0001_FFFE, 0x0002_0003),  # rollover of the low half
        (0x4000, 0x0000_0000, 0x4000),  # exactly MAX_FCNT_GAP
        (0xFFFF, 0xFFFF_FFF0, 0xFFFF_FFFF),  # the last counter a session can use
    ],
)
def test_reconstruct_fcnt(fcnt16: int, last: int | None, expected: int) -> None:
    assert reconstruct_fcnt(fcnt16, last) == expected


def test_reconstruct_fcnt_refuses_counter_overflow() -> None:
    with pytest.raises(VerificationError, match="2\\*\\*32"):
        reconstruct_fcnt(0x0001, 0xFFFF_FFF0)


def test_reconstruct_fcnt_refuses_big_gap_and_replays() -> None:
    with pytest.raises(VerificationError, match="gap 16385"):
        reconstruct_fcnt(0x4001, 0)
    # A replayed older frame looks like a jump of almost 65536.
    with pytest.raises(VerificationError, match="gap 65535"):
        reconstruct_fcnt(99, 100)
    assert reconstruct_fcnt(99, 100, max_gap=0xFFFF) == 0x1_0063


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((0x1_0000, None), {}, "fcnt16"),
        ((-1, None), {}, "fcnt16"),
        ((0, -1), {}, "last_fcnt"),
        ((0, 1 << 32), {}, "last_fcnt"),
        ((0, 0), {"max_gap": 0x1_0000}, "max_gap"),
    ],
)
def test_reconstruct_fcnt_argument_errors(
    args: tuple[int, int | None], kwargs: dict[str, int], field: str
) -> None:
    with pytest.raises(EncodeError) as info:
        reconstruct_fcnt(*args, **kwargs)
    assert info.value.field == field


@given(st.integers(0, 0xFFFF_FFFF), st.integers(0, MAX_FCNT_GAP))
def test_reconstruct_fcnt_recovers_any_advance_within_gap(last: int, gap: int) -> None:
    actual = last + gap
    if actual > 0xFFFF_FFFF:
        with pytest.raises(VerificationError):
            reconstruct_fcnt(actual & 0xFFFF, last)
    else:
        assert reconstruct_fcnt(actual & 0xFFFF, last) == actual


# --- verification failures ---------------------------------------------------------------


@given(st.integers(0, 16), st.integers(0, 7))
def test_any_flipped_bit_fails(position: int, bit: int) -> None:
    phy = bytearray(build_frame(_frame(fopts=b"\x02"), **KEYS))
    assert len(phy) == 17
    phy[position] ^= 1 << bit
    with pytest.raises((VerificationError, DecodeError)):
        open_frame(bytes(phy), **KEYS)


def test_wrong_nwkskey_is_a_mic_mismatch_without_key_in_message() -> None:
    phy = build_frame(_frame(), **KEYS)
    wrong = bytes.fromhex("ffeeddccbbaa99887766554433221100")
    with pytest.raises(VerificationError, match=r"^MIC mismatch: ") as info:
        open_frame(phy, nwk_s_key=wrong, app_s_key=APP)
    assert wrong.hex() not in str(info.value)
    assert NWK.hex() not in str(info.value)


def test_payload_bit_flip_is_detected() -> None:
    phy = bytearray(build_frame(_frame(), **KEYS))
    phy[10] ^= 0x01
    with pytest.raises(VerificationError, match="MIC mismatch"):
        open_frame(bytes(phy), **KEYS)


@pytest.mark.parametrize("length", [0, 15, 17])
@pytest.mark.parametrize("name", ["nwk_s_key", "app_s_key"])
def test_key_of_wrong_length_names_the_key(name: str, length: int) -> None:
    key = bytes(range(length))
    nwk, app = (key, APP) if name == "nwk_s_key" else (NWK, key)
    phy = build_frame(_frame(), **KEYS)
    parsed = parse_frame(phy)
    for call in (
        lambda: build_frame(_frame(), nwk_s_key=nwk, app_s_key=app),
        lambda: open_frame(phy, nwk_s_key=nwk, app_s_key=app),
        lambda: decrypt_payload(parsed, nwk_s_key=nwk, app_s_key=app, fcnt_full=7),
    ):
        with pytest.raises(EncodeError) as info:
            call()
        assert info.value.field == name
        assert isinstance(info.value, ValueError)
        if key:
            assert key.hex() not in str(info.value)


def test_key_must_be_bytes() -> None:
    with pytest.raises(EncodeError, match="nwk_s_key: must be bytes"):
        build_frame(_frame(), nwk_s_key="00" * 16, app_s_key=APP)  # type: ignore[arg-type]


# --- parse errors ---------------------------------------------------------------------------


def test_empty_input() -> None:
    with pytest.raises(TruncatedPayloadError) as info:
        parse_frame(b"")
    assert (info.value.field, info.value.offset) == ("MHDR", 0)


@pytest.mark.parametrize("length", range(1, 12))
def test_short_frame(length: int) -> None:
    with pytest.raises(TruncatedPayloadError) as info:
        parse_frame(b"\x40" + bytes(length - 1))
    assert info.value.field == "PHYPayload"
    assert (info.value.expected, info.value.got) == (12, length)
    assert isinstance(info.value, EOFError)


def test_fopts_len_beyond_frame() -> None:
    phy = bytes.fromhex("4004030201050100aabb11223344")
    with pytest.raises(TruncatedPayloadError) as info:
        parse_frame(phy)
    assert (info.value.field, info.value.offset) == ("FOpts", 8)
    assert (info.value.expected, info.value.got) == (5, 2)
    assert str(info.value).startswith("byte 8 (FOpts): ")


def test_fport_0_with_fopts_is_invalid() -> None:
    phy = bytes.fromhex("40040302010101000200aa11223344")
    with pytest.raises(DecodeError, match="FPort 0 with 1 bytes of FOpts") as info:
        parse_frame(phy)
    assert (info.value.field, info.value.offset) == ("FPort", 9)


@pytest.mark.parametrize(
    ("mhdr", "name"),
    [(0x00, "join-request"), (0x20, "join-accept"), (0xC0, "RFU"), (0xE0, "proprietary")],
)
def test_unsupported_mtypes(mhdr: int, name: str) -> None:
    with pytest.raises(DecodeError, match=f"unsupported MType .*{name}") as info:
        parse_frame(bytes([mhdr]) + bytes(22))
    assert (info.value.field, info.value.offset) == ("MHDR", 0)


@pytest.mark.parametrize("major", [1, 2, 3])
def test_major_version_other_than_r1(major: int) -> None:
    with pytest.raises(DecodeError, match=f"major version {major}"):
        parse_frame(bytes([0x40 | major]) + bytes(12))


def test_frame_longer_than_lora_phy() -> None:
    with pytest.raises(DecodeError, match="longer than the 255-byte"):
        parse_frame(b"\x40" + bytes(255))


# --- DataFrame validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"fopts": bytes(16)}, PayloadTooLargeError, "fopts"),
        ({"frm_payload": bytes(243)}, PayloadTooLargeError, "frm_payload"),
        ({"fopts": bytes(15), "frm_payload": bytes(242)}, PayloadTooLargeError, "PHYPayload"),
        ({"fport": None}, EncodeError, "fport"),
        ({"fport": 256}, EncodeError, "fport"),
        ({"fport": 0, "fopts": b"\x02"}, EncodeError, "fport"),
        ({"dev_addr": 1 << 32}, EncodeError, "dev_addr"),
        ({"fcnt": -1}, EncodeError, "fcnt"),
        ({"fcnt": 1 << 32}, EncodeError, "fcnt"),
        ({"mtype": 0}, EncodeError, "mtype"),
        ({"mic": b"\0\0\0"}, EncodeError, "mic"),
        ({"fopts": 3}, EncodeError, "fopts"),
        ({"frm_payload": "abc"}, EncodeError, "frm_payload"),
        ({"fport": True}, EncodeError, "fport"),
        ({"dev_addr": "260B1234"}, EncodeError, "dev_addr"),
    ],
)
def test_dataframe_validation(
    overrides: dict[str, object], error: type[EncodeError], field: str
) -> None:
    with pytest.raises(error) as info:
        _frame(**overrides)
    assert info.value.field == field


def test_dataframe_coerces_int_mtype_and_bytearray() -> None:
    frame = _frame(mtype=4, frm_payload=bytearray(b"\x01"))
    assert frame.mtype is MType.CONFIRMED_UP
    assert type(frame.frm_payload) is bytes
    assert hash(frame) == hash(_frame(mtype=MType.CONFIRMED_UP, frm_payload=b"\x01"))


def test_largest_frame_builds() -> None:
    phy = build_frame(_frame(frm_payload=bytes(MAX_FRM_PAYLOAD_SIZE)), **KEYS)
    assert len(phy) == MAX_PHY_PAYLOAD_SIZE
    assert open_frame(phy, **KEYS).frm_payload == bytes(MAX_FRM_PAYLOAD_SIZE)


# --- fuzz: decoders raise only project decode/verification errors -------------------------


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_parse_frame_fuzz(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_frame(data)


@settings(max_examples=500)
@given(st.binary(max_size=80), st.none() | st.integers(0, 0xFFFF_FFFF))
def test_open_frame_fuzz(data: bytes, last: int | None) -> None:
    with contextlib.suppress(DecodeError, VerificationError):
        open_frame(data, last_fcnt=last, **KEYS)


@settings(max_examples=300)
@given(frames, st.data())
def test_open_frame_fuzz_mutated_valid_frames(frame: DataFrame, data: st.DataObject) -> None:
    phy = bytearray(build_frame(frame, **KEYS))
    for _ in range(data.draw(st.integers(1, 3))):
        phy[data.draw(st.integers(0, len(phy) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(phy)))
    with contextlib.suppress(DecodeError, VerificationError):
        open_frame(bytes(phy[:cut]), last_fcnt=frame.fcnt, **KEYS)


def test_module_does_no_io_imports() -> None:
    code = (
        "import sys, lora_emotion.lorawan\n"
        "bad = [m for m in ('socket', 'asyncio', 'fastapi', 'serial') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
