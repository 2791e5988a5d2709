"""Write the relay's shared vectors from the Python reference modules.

Files (each consumed by the Python tests and by the C++ tests under arduino/tests):

* relay_frames.json - I2C/serial frames, one-byte transactions and byte streams
  (lora_emotion.relay_protocol);
* downlinks.json - command downlinks and what the relay answers (lora_emotion.downlink);
* quantise.json - integer weights and float probabilities to whole percent, by the one rule of
  docs/payload-format.md section 4.1 (relay_protocol.quantise_weights,
  messages.quantise_distribution);
* ledger.json - operation traces of the relay's airtime ledger: lora_emotion.budget.AirtimeLedger
  while its ring has room, merging the two oldest entries once it is full (MergingLedger).

Run only for a deliberate protocol change: python tests/vectors/make_relay_vectors.py
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from lora_emotion import downlink as dl
from lora_emotion import relay_protocol as rp
from lora_emotion.aggregator import DEFAULT_LEDGER_CAPACITY
from lora_emotion.budget import AirtimeLedger
from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.labels import FER2013, FERPLUS, PHYSIO3
from lora_emotion.messages import PROBABILITY_SCALE, Mode, quantise_distribution

HERE = Path(__file__).parent

#: The relay's AirtimeLedger capacity, taken from the Python twin so that it cannot drift;
#: tests/test_aggregator.py holds the twin to LORA_EMOTION_LEDGER_CAPACITY in LoraEmotionCore.h.
RELAY_LEDGER_CAPACITY = DEFAULT_LEDGER_CAPACITY


def write(name: str, document: dict[str, Any], *, compact: bool = False) -> None:
    if compact:
        text = json.dumps(document, separators=(",", ":"))
    else:
        text = json.dumps(document, indent=1)
    (HERE / name).write_text(text + "\n")


# -- frames -------------------------------------------------------------------------------------


def frame_fields(frame: rp.Frame) -> dict[str, Any]:
    if isinstance(frame, rp.ReadingFrame):
        return {
            "type": "reading",
            "label_set": frame.label_set,
            "label": frame.label,
            "confidence_pct": frame.confidence_pct,
        }
    if isinstance(frame, rp.DistributionFrame):
        return {
            "type": "distribution",
            "label_set": frame.label_set,
            "weights": list(frame.weights),
        }
    if isinstance(frame, rp.FacesFrame):
        return {
            "type": "faces",
            "label_set": frame.label_set,
            "faces": [{"label": f.label, "confidence_pct": f.confidence_pct} for f in frame.faces],
        }
    prediction = frame.prediction
    return {
        "type": "vitals",
        "label_set": frame.label_set,
        "heart_rate_bpm": frame.heart_rate_bpm,
        "skin_conductance_centi_us": frame.skin_conductance_centi_us,
        "prediction": None
        if prediction is None
        else {"label": prediction.label, "confidence_pct": prediction.confidence_pct},
    }


FRAMES: list[tuple[str, rp.Frame]] = [
    ("reading-happy-87", rp.reading_frame(FER2013, "happy", 0.87)),
    ("reading-no-confidence", rp.ReadingFrame(label_set=0, label=6)),
    ("reading-no-face", rp.ReadingFrame(label_set=0, label=None)),
    ("reading-ferplus-contempt", rp.reading_frame(FERPLUS, "contempt", 1.0)),
    (
        "distribution-fer2013",
        rp.distribution_frame(FER2013, (0.02, 0.01, 0.03, 0.87, 0.04, 0.02, 0.01)),
    ),
    ("distribution-raw-weights", rp.DistributionFrame(label_set=2, weights=(65535, 0, 1))),
    ("faces-none", rp.FacesFrame(label_set=0, faces=())),
    (
        "faces-two",
        rp.FacesFrame(
            label_set=0, faces=(rp.FaceEntry(label=3, confidence_pct=90), rp.FaceEntry(label=4))
        ),
    ),
    (
        "vitals-full",
        rp.VitalsFrame(
            label_set=2,
            heart_rate_bpm=72,
            skin_conductance_centi_us=321,
            prediction=rp.Prediction(label=1, confidence_pct=60),
        ),
    ),
    ("vitals-heart-only", rp.VitalsFrame(label_set=2, heart_rate_bpm=180)),
    (
        "vitals-no-face",
        rp.VitalsFrame(
            label_set=0, skin_conductance_centi_us=10_000, prediction=rp.Prediction(label=None)
        ),
    ),
    (
        "faces-max",
        rp.FacesFrame(
            label_set=0,
            faces=tuple(
                rp.FaceEntry(label=i % 7, confidence_pct=50 + i) for i in range(rp.MAX_FACES)
            ),
        ),
    ),
]


def corrupt(frame: bytes, index: int, value: int) -> bytes:
    return frame[:index] + bytes([value]) + frame[index + 1 :]


def with_crc(body: bytes) -> bytes:
    """A frame around an arbitrary type + length + payload, with a correct CRC."""
    from lora_emotion.labels import crc16_ccitt

    return bytes([rp.SYNC]) + body + crc16_ccitt(body).to_bytes(2, "big")


def invalid_frames() -> list[dict[str, Any]]:
    good = rp.encode_frame(rp.ReadingFrame(label_set=0, label=3, confidence_pct=87))
    cases = [
        ("short", good[:4], "length"),
        ("no-sync", corrupt(good, 0, 0xA4), "sync"),
        ("length-too-big", with_crc(bytes([1, 34]) + bytes(34)), "length"),
        ("length-mismatch", good + b"\x00", "length"),
        ("bad-crc", corrupt(good, len(good) - 1, good[-1] ^ 1), "checksum"),
        ("unknown-type", with_crc(bytes([9, 3, 0, 3, 87])), "type"),
        ("reading-set-24", with_crc(bytes([1, 3, 24, 3, 87])), "payload"),
        ("reading-confidence-101", with_crc(bytes([1, 3, 0, 3, 101])), "payload"),
        ("reading-class-64", with_crc(bytes([1, 3, 0, 64, 50])), "payload"),
        ("reading-noface-with-confidence", with_crc(bytes([1, 3, 0, 0xFF, 50])), "payload"),
        ("reading-short", with_crc(bytes([1, 2, 0, 3])), "payload"),
        ("empty-payload", with_crc(bytes([1, 0])), "payload"),
        ("distribution-one-class", with_crc(bytes([2, 3, 0, 0, 1])), "payload"),
        ("distribution-odd", with_crc(bytes([2, 4, 0, 0, 1, 0])), "payload"),
        ("distribution-zero-sum", with_crc(bytes([2, 5, 0, 0, 0, 0, 0])), "payload"),
        ("faces-odd", with_crc(bytes([3, 2, 0, 3])), "payload"),
        ("faces-no-face-entry", with_crc(bytes([3, 3, 0, 0xFF, 0xFF])), "payload"),
        ("vitals-nothing", with_crc(bytes([4, 6, 2, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF])), "payload"),
        ("vitals-heart-251", with_crc(bytes([4, 6, 2, 251, 0xFF, 0xFF, 0xFE, 0xFF])), "payload"),
        ("vitals-skin-10001", with_crc(bytes([4, 6, 2, 0xFF, 0x27, 0x11, 0xFE, 0xFF])), "payload"),
        (
            "vitals-confidence-without-reading",
            with_crc(bytes([4, 6, 2, 70, 0xFF, 0xFF, 0xFE, 50])),
            "payload",
        ),
    ]
    out = []
    for name, data, code in cases:
        try:
            rp.decode_frame(data)
        except DecodeError as exc:
            assert exc.field == code, (name, exc.field, code)
        else:
            raise AssertionError(f"{name} decoded")
        out.append({"name": name, "hex": data.hex().upper(), "error": code})
    return out


def stream_events(data: bytes) -> list[str]:
    buffer = bytearray(data)
    events = []
    while True:
        try:
            frame = rp.maybe_next_frame(buffer)
        except DecodeError as exc:
            events.append(f"error:{exc.field}")
            continue
        if frame is None:
            return events
        events.append(f"frame:{frame_fields(frame)['type']}")


def streams() -> list[dict[str, Any]]:
    frames = [rp.encode_frame(f) for _, f in FRAMES]
    good = frames[0]
    cases: list[tuple[str, bytes]] = [
        ("two-frames", frames[0] + frames[4]),
        ("junk-before", b"hello\r\n" + frames[1]),
        ("junk-between", frames[2] + b"\x00\x07\x03" + frames[3]),
        ("bad-crc-then-good", corrupt(good, len(good) - 1, 0) + frames[5]),
        ("length-too-big-then-good", bytes([rp.SYNC, 1, 200]) + frames[6]),
        ("frame-inside-bad-frame", bytes([rp.SYNC, 1, 30]) + frames[0] + bytes(30)),
        ("truncated-at-end", frames[7] + frames[8][:6]),
        ("type-error", with_crc(bytes([9, 3, 0, 3, 87])) + frames[9]),
        ("sync-bytes-only", bytes([rp.SYNC] * 5)),
    ]
    rng = random.Random(2021)
    for n in range(6):
        chunks = []
        for _ in range(8):
            pick = rng.random()
            if pick < 0.5:
                chunks.append(rng.choice(frames))
            elif pick < 0.7:
                chunks.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6))))
            else:
                frame = bytearray(rng.choice(frames))
                frame[rng.randrange(1, len(frame))] ^= 1 << rng.randrange(8)
                chunks.append(bytes(frame))
        cases.append((f"random-{n}", b"".join(chunks)))
    return [
        {"name": name, "hex": data.hex().upper(), "events": stream_events(data)}
        for name, data in cases
    ]


def transactions() -> list[dict[str, Any]]:
    cases = [
        ("legacy-angry", bytes([0])),
        ("legacy-neutral", bytes([6])),
        ("legacy-no-face", bytes([7])),
        ("legacy-out-of-range", bytes([8])),
        ("legacy-0xff", bytes([0xFF])),
        ("frame", rp.encode_frame(FRAMES[0][1])),
        ("frame-with-trailing-byte", rp.encode_frame(FRAMES[0][1]) + b"\x00"),
    ]
    out = []
    for name, data in cases:
        entry: dict[str, Any] = {"name": name, "hex": data.hex().upper()}
        try:
            decoded = rp.decode_i2c_transaction(data)
        except DecodeError as exc:
            entry["expect"] = f"error:{exc.field}"
        else:
            if isinstance(decoded, rp.LegacyByte):
                try:
                    label = decoded.label(7)
                except DecodeError:
                    entry["expect"] = "error:legacy_range"
                else:
                    entry["expect"] = "legacy:" + ("none" if label is None else str(label))
            else:
                entry["expect"] = f"frame:{frame_fields(decoded)['type']}"
        out.append(entry)
    return out


def frames_document() -> dict[str, Any]:
    frames = []
    for name, frame in FRAMES:
        data = rp.encode_frame(frame)
        assert rp.decode_frame(data) == frame
        frames.append({"name": name, "hex": data.hex().upper(), "frame": frame_fields(frame)})
    return {
        "format_version": 1,
        "note": "Generated by tests/vectors/make_relay_vectors.py (lora_emotion.relay_protocol).",
        "sync": rp.SYNC,
        "max_frame_payload": rp.MAX_FRAME_PAYLOAD,
        "frames": frames,
        "invalid": invalid_frames(),
        "transactions": transactions(),
        "streams": streams(),
    }


# -- downlinks ----------------------------------------------------------------------------------

DEFAULT_CONFIG = {
    "mode": "summary",
    "window_s": 60,
    "budget_s": 30,
    "set": 0,
    "classes": 7,
    "fingerprint": FER2013.fingerprint,
    "status_min": 360,
}


def command_fields(command: dl.Command) -> dict[str, Any]:
    if isinstance(command, dl.SetWindow):
        return {"op": "set_window", "window_s": command.window_s}
    if isinstance(command, dl.SetMode):
        return {"op": "set_mode", "mode": command.mode.name.lower()}
    if isinstance(command, dl.SetDailyBudget):
        return {"op": "set_daily_budget", "budget_s": command.budget_s}
    if isinstance(command, dl.SetLabelSet):
        return {
            "op": "set_label_set",
            "set_id": command.set_id,
            "classes": command.classes,
            "fingerprint": command.fingerprint,
        }
    if isinstance(command, dl.SendStatus):
        return {"op": "send_status"}
    return {"op": "set_status_interval", "interval_min": command.interval_min}


def applied_config(downlink: dl.Downlink) -> dict[str, Any]:
    config = dict(DEFAULT_CONFIG)
    for command in downlink.commands:
        if isinstance(command, dl.SetWindow):
            config["window_s"] = command.window_s
        elif isinstance(command, dl.SetMode):
            config["mode"] = command.mode.name.lower()
        elif isinstance(command, dl.SetDailyBudget):
            config["budget_s"] = command.budget_s
        elif isinstance(command, dl.SetLabelSet):
            config.update(
                set=command.set_id, classes=command.classes, fingerprint=command.fingerprint
            )
        elif isinstance(command, dl.SetStatusInterval):
            config["status_min"] = command.interval_min
    return config


def downlinks_document() -> dict[str, Any]:
    valid = [
        ("window-120", dl.Downlink(seq=1, commands=(dl.SetWindow(window_s=120),)), "applied"),
        ("window-max", dl.Downlink(seq=2, commands=(dl.SetWindow(window_s=65_536),)), "applied"),
        (
            "mode-distribution",
            dl.Downlink(seq=3, commands=(dl.SetMode(mode=Mode.DISTRIBUTION),)),
            "applied",
        ),
        (
            "budget-1024",
            dl.Downlink(seq=4, commands=(dl.SetDailyBudget(budget_s=1024),)),
            "applied",
        ),
        (
            "label-set-physio3",
            dl.Downlink(seq=5, commands=(dl.SetLabelSet.of(PHYSIO3),)),
            "applied",
        ),
        ("send-status", dl.Downlink(seq=6, commands=(dl.SendStatus(),)), "applied"),
        (
            "status-interval-60",
            dl.Downlink(seq=7, commands=(dl.SetStatusInterval(interval_min=60),)),
            "applied",
        ),
        ("ping", dl.Downlink(seq=8), "applied"),
        (
            "several",
            dl.Downlink(
                seq=255,
                commands=(
                    dl.SetWindow(window_s=300),
                    dl.SetMode(mode=Mode.READING),
                    dl.SetDailyBudget(budget_s=10),
                    dl.SendStatus(),
                ),
            ),
            "applied",
        ),
        (
            "user-set-12-classes",
            dl.Downlink(
                seq=9, commands=(dl.SetLabelSet(set_id=6, classes=12, fingerprint=0x1234),)
            ),
            "applied",
        ),
        # Valid on the wire, refused by the relay:
        (
            "user-set-17-classes",
            dl.Downlink(seq=10, commands=(dl.SetLabelSet(set_id=7, classes=17, fingerprint=1),)),
            "rejected",
        ),
        (
            "builtin-set-wrong-fingerprint",
            dl.Downlink(seq=11, commands=(dl.SetLabelSet(set_id=0, classes=7, fingerprint=1),)),
            "rejected",
        ),
        (
            "all-or-nothing",
            dl.Downlink(
                seq=12,
                commands=(
                    dl.SetWindow(window_s=30),
                    dl.SetLabelSet(set_id=1, classes=7, fingerprint=FERPLUS.fingerprint),
                ),
            ),
            "rejected",
        ),
    ]
    entries: list[dict[str, Any]] = []
    for name, downlink, device in valid:
        payload = dl.encode(downlink)
        assert dl.decode(payload) == downlink
        entries.append(
            {
                "name": name,
                "hex": payload.hex().upper(),
                "python": {
                    "seq": downlink.seq,
                    "commands": [command_fields(c) for c in downlink.commands],
                },
                "device": device,
                "config": applied_config(downlink) if device == "applied" else DEFAULT_CONFIG,
            }
        )
    invalid = [
        ("unknown-opcode", "0109", "unknown_command"),
        ("truncated-window", "010100", "unknown_command"),
        ("mode-4", "020204", "rejected"),
        ("budget-1025", "03030400", "rejected"),
        ("label-set-id-24", "0404180700FF", "rejected"),
        ("label-set-one-class", "0404060100FF", "rejected"),
        ("status-interval-0", "05060000", "rejected"),
        ("rejected-before-unknown", "06020409", "rejected"),
        ("unknown-after-valid", "070101000109", "unknown_command"),
    ]
    for name, hex_text, device in invalid:
        try:
            dl.decode(bytes.fromhex(hex_text))
        except DecodeError:
            pass
        else:
            raise AssertionError(f"{name} decoded")
        entries.append(
            {
                "name": name,
                "hex": hex_text.upper(),
                "python": None,
                "device": device,
                "config": DEFAULT_CONFIG,
            }
        )
    return {
        "format_version": 1,
        "note": "Generated by tests/vectors/make_relay_vectors.py from lora_emotion.downlink. "
        "'python' is the decoded downlink (null: DecodeError); 'device' is what the "
        "relay's next status reports; 'config' its settings afterwards, from defaults.",
        "port": dl.COMMAND_PORT,
        "defaults": DEFAULT_CONFIG,
        "downlinks": entries,
    }


# -- quantisation -------------------------------------------------------------------------------


def quantise_document() -> dict[str, Any]:
    cases = [
        [1, 1, 1],
        [2, 1],
        [1] * 7,
        [9000, 500, 300, 200],
        [1, 2, 3, 4, 5, 6, 7],
        [65535, 1],
        [3, 3, 3, 1],
        [0, 5, 0, 5],
        [333, 333, 334],
        [200, 100, 300, 8700, 400, 200, 100],
        [1, 0, 0, 0, 0, 0, 0, 0],
        [65535] * 16,
        [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
        # Exact ties in the remainders: the lower index wins (float arithmetic used to tip them).
        [4, 1, 1],
        [1, 4, 1],
        [1, 1, 4],
        [2, 2, 1, 1],
        [1, 1, 2, 2],
        [3, 1, 1, 1],
        [1, 1, 1, 1, 1, 1],
        [5, 1, 1, 1, 1, 1, 1],
        [7, 2, 2, 1, 1],
        [0, 1, 0, 1, 0, 1],
    ]
    rng = random.Random(7)
    while len(cases) < 60:
        weights = [rng.randrange(0, 65536) for _ in range(rng.randrange(2, 17))]
        if any(weights):
            cases.append(weights)
    # Probabilities as a model gives them: each becomes floor(q * 3 603 600 + 0.5) first.
    probabilities = [
        [4 / 6, 1 / 6, 1 / 6],
        [1 / 6, 4 / 6, 1 / 6],
        [1 / 3, 1 / 3, 1 / 3],
        [1 / 7] * 7,
        [0.125] * 8,
        [1 / 16] * 16,
        [0.67, 0.17, 0.16],
        [0.02, 0.01, 0.03, 0.87, 0.04, 0.02, 0.01],
        [0.5, 0.5],
        [2 / 9, 2 / 9, 5 / 9],
        [0.995, 0.0],
        [0.3, 0.3, 0.3, 0.1],
        [0.1] * 10,
        [0.333, 0.333, 0.333],
        [0.996, 0.001, 0.001, 0.001, 0.001],
    ]
    rejected = [[0.5, 0.48], [0.6, 0.6], [1.0, 0.02], [0.0, 0.0]]
    return {
        "format_version": 1,
        "note": "Generated by tests/vectors/make_relay_vectors.py. docs/payload-format.md section "
        "4.1: 'cases' are integer weights and their whole percentages "
        "(relay_protocol.quantise_weights, the relay's quantise_weights); 'probabilities' "
        "are floats, their integer weights floor(q * 3603600 + 0.5) and the percentages "
        "(messages.quantise_distribution); 'rejected' are probabilities whose weights do "
        "not sum to 3603600 within 1 %.",
        "probability_scale": PROBABILITY_SCALE,
        "cases": [{"weights": w, "percent": rp.quantise_weights(w)} for w in cases],
        "probabilities": [
            {
                "probabilities": q,
                "weights": [math.floor(v * PROBABILITY_SCALE + 0.5) for v in q],
                "percent": quantise_distribution(q),
            }
            for q in probabilities
        ],
        "rejected": rejected,
    }


# -- ledger -------------------------------------------------------------------------------------


class MergingLedger:
    """The relay's ledger: AirtimeLedger's rules in a ring that merges instead of refusing.

    When the ring is full the two oldest entries become one with the later start and the
    summed airtime: any window ending after the later start that holds the earlier start also
    holds the later one, so the ledger can only over-count.
    """

    def __init__(self, *, daily_cap_ms: int | None, capacity: int) -> None:
        self.exact = AirtimeLedger(daily_cap_ms=daily_cap_ms, capacity=10**6)
        self.daily_cap_ms = daily_cap_ms
        self.capacity = capacity
        self.entries: list[list[int]] = []
        self.merged = False

    def _advance(self, now: int) -> None:
        retention = (
            self.exact.duty_cycle_window_ms
            if self.daily_cap_ms is None
            else max(self.exact.duty_cycle_window_ms, self.exact.daily_window_ms)
        )
        while self.entries and now - self.entries[0][0] >= retention:
            del self.entries[0]

    def used(self, now: int, window: int) -> int:
        self._advance(now)
        return sum(a for start, a in self.entries if now - start < window)

    def can_send(self, now: int, airtime: int) -> bool:
        hour = self.used(now, self.exact.duty_cycle_window_ms)
        day = self.used(now, self.exact.daily_window_ms)
        allowed = hour + airtime <= self.exact.duty_cycle_budget_ms and (
            self.daily_cap_ms is None or day + airtime <= self.daily_cap_ms
        )
        exact = self.exact.can_send(now, airtime)
        assert exact or not allowed, "the merging ledger allowed what the exact one refuses"
        assert self.merged or exact == allowed
        return allowed

    def record(self, now: int, airtime: int) -> None:
        self._advance(now)
        if len(self.entries) == self.capacity:
            oldest = self.entries.pop(0)
            self.entries[0][1] += oldest[1]
            self.merged = True
        self.entries.append([now, airtime])
        self.exact.record(now, airtime)


def ledger_trace(
    name: str,
    rng: random.Random,
    *,
    daily_cap_ms: int | None,
    steps: int,
    airtimes: list[int],
    gap_ms: tuple[int, int],
) -> dict[str, Any]:
    ledger = MergingLedger(daily_cap_ms=daily_cap_ms, capacity=RELAY_LEDGER_CAPACITY)
    exact = ledger.exact
    ops: list[list[Any]] = []
    now = rng.randrange(0, 10_000)
    for _ in range(steps):
        now += rng.randrange(*gap_ms)
        airtime = rng.choice(airtimes)
        allowed = ledger.can_send(now, airtime)
        ops.append(["can_send", now, airtime, allowed])
        if allowed or rng.random() < 0.1:
            ledger.record(now, airtime)
            ops.append(["record", now, airtime, True])
        if rng.random() < 0.3:
            ops.append(["used_hour_ms", now, None, ledger.used(now, exact.duty_cycle_window_ms)])
            ops.append(["used_day_ms", now, None, ledger.used(now, exact.daily_window_ms)])
            ops.append(["len", now, None, len(ledger.entries)])
        if rng.random() < 0.3 and not ledger.merged:
            # The merged ring answers differently only in being more cautious; the exact
            # AirtimeLedger is the reference for this query while nothing has been merged.
            probe = rng.choice([*airtimes, 40_000])
            try:
                at: int | None = exact.next_allowed_ms(now, probe)
            except EncodeError:
                at = None
            ops.append(["next_allowed_ms", now, probe, at])
    return {
        "name": name,
        "capacity": RELAY_LEDGER_CAPACITY,
        "merged": ledger.merged,
        "duty_cycle_budget_ms": exact.duty_cycle_budget_ms,
        "duty_cycle_window_ms": exact.duty_cycle_window_ms,
        "daily_cap_ms": daily_cap_ms,
        "daily_window_ms": exact.daily_window_ms,
        "ops": ops,
    }


def ledger_document() -> dict[str, Any]:
    rng = random.Random(36)
    traces = [
        ledger_trace(
            "sf12-daily-cap",
            rng,
            daily_cap_ms=30_000,
            steps=150,
            airtimes=[1156, 1319, 1483, 1811],
            gap_ms=(30_000, 900_000),
        ),
        ledger_trace(
            "sf7-ring-merges",
            rng,
            daily_cap_ms=30_000,
            steps=260,
            airtimes=[47, 52, 57, 62],
            gap_ms=(20_000, 200_000),
        ),
        ledger_trace(
            "duty-cycle-only",
            rng,
            daily_cap_ms=None,
            steps=160,
            airtimes=[1483, 2793, 4000],
            gap_ms=(1_000, 60_000),
        ),
        ledger_trace(
            "big-cap-hourly-binds",
            rng,
            daily_cap_ms=1_024_000,
            steps=200,
            airtimes=[1483, 2793],
            gap_ms=(1_000, 30_000),
        ),
    ]
    assert any(t["merged"] for t in traces) and not all(t["merged"] for t in traces)
    return {
        "format_version": 1,
        "note": "Generated by tests/vectors/make_relay_vectors.py: operations on the relay's "
        "airtime ledger and their results, each op [name, now_ms, airtime_ms, "
        "expected]. Equal to lora_emotion.budget.AirtimeLedger until the ring is full "
        "('merged': false traces never fill it); then the two oldest entries merge. "
        "'next_allowed_ms' expects null where AirtimeLedger raises.",
        "traces": traces,
    }


def main() -> None:
    write("relay_frames.json", frames_document())
    write("downlinks.json", downlinks_document())
    write("quantise.json", quantise_document())
    write("ledger.json", ledger_document(), compact=True)


if __name__ == "__main__":
    main()
