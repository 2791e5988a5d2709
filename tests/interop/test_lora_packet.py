"""Interop: lora_emotion.lorawan against lora-packet, an independent LoRaWAN implementation.

Each direction is checked: frames built here verify and decrypt in lora-packet, frames built by
lora-packet open here, and both produce the same bytes for the same fields. Cases go to one
node process per batch (``lora_packet_tool.js``) because starting node costs far more than a
case does.

Needs node and npm; the pinned lora-packet comes from ``package-lock.json`` via ``npm ci``.
Outside CI a missing toolchain skips these tests; with CI=true it fails them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lora_emotion.errors import VerificationError
from lora_emotion.lorawan import (
    MAX_FOPTS_SIZE,
    DataFrame,
    MType,
    build_frame,
    open_frame,
    parse_frame,
    verify_mic,
)

HERE = Path(__file__).resolve().parent
TOOL = HERE / "lora_packet_tool.js"
IN_CI = os.environ.get("CI") == "true"

NWK = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
APP = bytes.fromhex("3c4fcf098815f7aba6d2ae2816157e2b")

Answer = dict[str, Any]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"lora-packet interop must run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    """Path to node, with lora-packet installed from the lock file."""
    node_bin = shutil.which("node")
    npm_bin = shutil.which("npm")
    if node_bin is None or npm_bin is None:
        _unavailable("node and npm are needed to run lora-packet")
        raise AssertionError("unreachable")
    if not (HERE / "node_modules" / "lora-packet").is_dir():
        try:
            subprocess.run(
                [npm_bin, "ci", "--no-audit", "--no-fund"],
                cwd=HERE,
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", "") or ""
            _unavailable(f"npm ci in {HERE} failed: {detail.strip()[-500:]}")
    return node_bin


def run_tool(node: str, requests: list[dict[str, Any]]) -> list[Answer]:
    """Send one batch to lora_packet_tool.js and return its answers, in order."""
    result = subprocess.run(
        [node, str(TOOL)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    answers: list[Answer] = json.loads(result.stdout)
    assert len(answers) == len(requests)
    return answers


def open_request(phy: bytes, fcnt: int) -> dict[str, Any]:
    return {
        "op": "open",
        "phy": phy.hex(),
        "nwk_s_key": NWK.hex(),
        "app_s_key": APP.hex(),
        "fcnt_msb": fcnt >> 16,
    }


def build_request(frame: DataFrame) -> dict[str, Any]:
    return {
        "op": "build",
        "mtype": int(frame.mtype),
        "dev_addr": f"{frame.dev_addr:08x}",
        "fcnt": frame.fcnt,
        "adr": frame.adr,
        "adr_ack_req": frame.adr_ack_req,
        "ack": frame.ack,
        "fpending": frame.fpending,
        "fopts": frame.fopts.hex(),
        "fport": frame.fport,
        "payload": frame.frm_payload.hex(),
        "nwk_s_key": NWK.hex(),
        "app_s_key": APP.hex(),
    }


COUNTERS = (0, 1, 0xFFFF, 0x1_0000, 0x1_2345, 0x00AB_CDEF, 0xFFFF_FFFF)


def edge_frames() -> list[DataFrame]:
    """Every MType with and without FOpts, FPort 0 / >0 / absent, counters past 16 bits."""
    frames = []
    for mtype in MType:
        for fcnt in COUNTERS:
            for fopts, fport, payload in (
                (b"", 1, b"emotion"),
                (b"\x02", 42, bytes(range(17))),  # LinkCheckReq, two AES blocks
                (b"\x03\x07", None, b""),  # header only, MAC commands in FOpts
                (b"", 0, b"\x06"),  # MAC command in an FPort-0 payload (NwkSKey)
                (b"", 223, b""),  # port present, empty payload
                (bytes(range(MAX_FOPTS_SIZE)), 224, bytes(200)),
            ):
                frames.append(
                    DataFrame(
                        mtype=mtype,
                        dev_addr=0x260B_1234 ^ fcnt,
                        fcnt=fcnt,
                        adr=fcnt % 2 == 0,
                        adr_ack_req=mtype.uplink and fcnt == 1,
                        ack=mtype.confirmed,
                        fpending=not mtype.uplink,
                        fopts=fopts,
                        fport=fport,
                        frm_payload=payload,
                    )
                )
    return frames


def random_frames(count: int, seed: int) -> list[DataFrame]:
    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        fport = rng.choice([None, 0, *range(1, 256)])
        fopts = b"" if fport == 0 else rng.randbytes(rng.randint(0, MAX_FOPTS_SIZE))
        payload = b"" if fport is None else rng.randbytes(rng.randint(0, 242 - len(fopts)))
        frames.append(
            DataFrame(
                mtype=rng.choice(list(MType)),
                dev_addr=rng.getrandbits(32),
                fcnt=rng.getrandbits(rng.choice([8, 16, 17, 24, 32])),
                adr=rng.random() < 0.5,
                adr_ack_req=rng.random() < 0.5,
                ack=rng.random() < 0.5,
                fpending=rng.random() < 0.5,
                fopts=fopts,
                fport=fport,
                frm_payload=payload,
            )
        )
    return frames


CASES = edge_frames() + random_frames(250, seed=20240611)


def assert_same_fields(answer: Answer, frame: DataFrame, phy: bytes) -> None:
    assert "error" not in answer, answer
    assert answer["mtype"] == frame.mtype
    assert answer["dir"] == ("up" if frame.uplink else "down")
    assert answer["dev_addr"] == f"{frame.dev_addr:08x}"
    assert answer["fcnt16"] == frame.fcnt & 0xFFFF
    assert answer["adr"] == frame.adr
    assert answer["adr_ack_req"] == frame.adr_ack_req
    assert answer["ack"] == frame.ack
    assert answer["fpending"] == frame.fpending
    assert answer["fopts"] == frame.fopts.hex()
    assert answer["fport"] == frame.fport
    assert answer["frm_payload"] == parse_frame(phy).frm_payload.hex()
    assert answer["mic"] == phy[-4:].hex()


def test_frames_built_here_verify_and_decrypt_in_lora_packet(node: str) -> None:
    phys = [build_frame(frame, nwk_s_key=NWK, app_s_key=APP) for frame in CASES]
    answers = run_tool(
        node, [open_request(phy, f.fcnt) for f, phy in zip(CASES, phys, strict=True)]
    )
    for frame, phy, answer in zip(CASES, phys, answers, strict=True):
        assert_same_fields(answer, frame, phy)
        assert answer["mic_ok"] is True, frame
        assert answer["plaintext"] == frame.frm_payload.hex(), frame


def test_lora_packet_uses_the_counter_high_half(node: str) -> None:
    """Guards the bridge itself: with the high half withheld, lora-packet must disagree."""
    high = [f for f in CASES if f.fcnt > 0xFFFF]
    phys = [build_frame(f, nwk_s_key=NWK, app_s_key=APP) for f in high]
    requests = [open_request(phy, 0) for phy in phys]
    answers = run_tool(node, requests)
    assert high
    assert all(answer["mic_ok"] is False for answer in answers)


def test_frames_built_by_lora_packet_open_here_byte_for_byte(node: str) -> None:
    answers = run_tool(node, [build_request(frame) for frame in CASES])
    for frame, answer in zip(CASES, answers, strict=True):
        assert "error" not in answer, (frame, answer)
        theirs = bytes.fromhex(answer["phy"])
        assert theirs == build_frame(frame, nwk_s_key=NWK, app_s_key=APP), frame
        last = max(frame.fcnt - 100, 0) if frame.fcnt > 0xFFFF else None
        opened = open_frame(theirs, nwk_s_key=NWK, app_s_key=APP, last_fcnt=last)
        assert opened.fcnt == frame.fcnt
        assert opened.frm_payload == frame.frm_payload
        assert opened.fopts == frame.fopts
        assert opened.fport == frame.fport
        assert (opened.adr, opened.adr_ack_req, opened.ack, opened.fpending) == (
            frame.adr,
            frame.adr_ack_req,
            frame.ack,
            frame.fpending,
        )


def test_tampered_frame_fails_in_both(node: str) -> None:
    frame = CASES[1]
    phy = bytearray(build_frame(frame, nwk_s_key=NWK, app_s_key=APP))
    phy[-5] ^= 0x80  # last FRMPayload byte
    (answer,) = run_tool(node, [open_request(bytes(phy), frame.fcnt)])
    assert answer["mic_ok"] is False
    with pytest.raises(VerificationError, match="MIC mismatch"):
        verify_mic(parse_frame(bytes(phy)), nwk_s_key=NWK, fcnt_full=frame.fcnt)
