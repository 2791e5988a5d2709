"""Write tests/vectors/messages.json from the Python reference codec.

The file is the cross-language contract (pytest, the C++ sketch core, a JavaScript decoder):
run this only for a deliberate wire-format change, and record that change in docs/changes.md.
Usage: python tests/vectors/make_messages.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lora_emotion.labels import BUILTIN_SETS, FER2013, FERPLUS, PHYSIO3, VALENCE3, LabelSet
from lora_emotion.messages import (
    Batch,
    BatchEntry,
    CommandStatus,
    Distribution,
    Face,
    Faces,
    Message,
    Mode,
    Reading,
    Status,
    Summary,
    Vitals,
    decode,
    encode,
    port_of,
)
from lora_emotion.senml import encode_json
from lora_emotion.uplink import message_records

HERE = Path(__file__).parent


def pct(value: float | None) -> int | None:
    return None if value is None else round(value * 100)


def reading_fields(m: Reading) -> dict[str, Any]:
    return {"label": m.label, "confidence_pct": pct(m.confidence)}


def fields(m: Message) -> dict[str, Any]:
    """Integer-only description of the decoded message, convenient for C and JS tests."""
    if isinstance(m, Reading):
        return {"type": "reading", "label_set": m.label_set.id, **reading_fields(m)}
    if isinstance(m, Distribution):
        return {
            "type": "distribution",
            "label_set": m.label_set.id,
            "percent": [round(p * 100) for p in m.probabilities],
        }
    if isinstance(m, Faces):
        return {
            "type": "faces",
            "label_set": m.label_set.id,
            "faces": [{"label": f.label, "confidence_pct": pct(f.confidence)} for f in m.faces],
        }
    if isinstance(m, Summary):
        return {
            "type": "summary",
            "label_set": m.label_set.id,
            "window_s": m.window_s,
            "counts": list(m.counts),
            "no_face": m.no_face,
            "mean_confidence_pct": pct(m.mean_confidence),
            "dominant": m.dominant,
        }
    if isinstance(m, Vitals):
        return {
            "type": "vitals",
            "label_set": m.label_set.id,
            "heart_rate_bpm": m.heart_rate_bpm,
            "skin_conductance_centi_us": None
            if m.skin_conductance_us is None
            else round(m.skin_conductance_us * 100),
            "reading": None if m.reading is None else reading_fields(m.reading),
        }
    if isinstance(m, Status):
        return {
            "type": "status",
            "protocol_version": m.protocol_version,
            "firmware": list(m.firmware),
            "battery_percent": m.battery_percent,
            "uptime_s": m.uptime_s,
            "dropped": m.dropped,
            "window_s": m.window_s,
            "mode": m.mode.name.lower(),
            "daily_budget_s": m.daily_budget_s,
            "label_set_id": m.label_set_id,
            "label_set_fingerprint": m.label_set_fingerprint,
            "command_seq": m.command_seq,
            "command_status": m.command_status.name.lower(),
        }
    assert isinstance(m, Batch)
    kind = type(m.entries[0].message).__name__.lower()
    return {
        "type": "batch",
        "kind": kind,
        "label_set": m.label_set.id,
        "entries": [{"age_s": e.age_s, "message": fields(e.message)} for e in m.entries],
    }


def r(ls: LabelSet, label: str | None, conf: float | None = None) -> Reading:
    return Reading(label_set=ls, label=label, confidence=conf)


def cases() -> list[tuple[str, Message]]:
    out: list[tuple[str, Message]] = []
    for ls in (FER2013, FERPLUS, PHYSIO3, VALENCE3):
        out += [
            (f"reading-{ls.name}-first-0", r(ls, ls.labels[0], 0.0)),
            (f"reading-{ls.name}-last-100", r(ls, ls.labels[-1], 1.0)),
            (f"reading-{ls.name}-noface", r(ls, None)),
        ]
    out += [
        ("reading-fer2013-happy-87", r(FER2013, "happy", 0.87)),
        ("reading-fer2013-sad-33", r(FER2013, "sad", 0.333)),
        (
            "distribution-fer2013-cli-example",
            Distribution(
                label_set=FER2013, probabilities=(0.02, 0.01, 0.03, 0.87, 0.04, 0.02, 0.01)
            ),
        ),
        (
            "distribution-fer2013-uniform",
            Distribution(label_set=FER2013, probabilities=(1 / 7,) * 7),
        ),
        (
            "distribution-fer2013-all-first",
            Distribution(label_set=FER2013, probabilities=(1.0, 0, 0, 0, 0, 0, 0)),
        ),
        (
            "distribution-fer2013-all-last",
            Distribution(label_set=FER2013, probabilities=(0, 0, 0, 0, 0, 0, 1.0)),
        ),
        (
            "distribution-ferplus-mixed",
            Distribution(
                label_set=FERPLUS, probabilities=(0.5, 0.2, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03)
            ),
        ),
        ("distribution-physio3", Distribution(label_set=PHYSIO3, probabilities=(0.2, 0.7, 0.1))),
        ("faces-fer2013-none", Faces(label_set=FER2013, faces=())),
        (
            "faces-fer2013-one",
            Faces(label_set=FER2013, faces=(Face(label="happy", confidence=0.9),)),
        ),
        (
            "faces-fer2013-three",
            Faces(
                label_set=FER2013,
                faces=(
                    Face(label="happy", confidence=0.9),
                    Face(label="sad", confidence=0.41),
                    Face(label="neutral", confidence=0.66),
                ),
            ),
        ),
        (
            "faces-physio3-two",
            Faces(
                label_set=PHYSIO3,
                faces=(Face(label="angry", confidence=0.5), Face(label="sad", confidence=1.0)),
            ),
        ),
        (
            "summary-fer2013-minute",
            Summary(
                label_set=FER2013,
                window_s=60,
                counts=(1, 0, 0, 40, 5, 0, 10),
                no_face=4,
                mean_confidence=0.81,
            ),
        ),
        (
            "summary-fer2013-empty",
            Summary(label_set=FER2013, window_s=1, counts=(0,) * 7, no_face=0),
        ),
        (
            "summary-fer2013-only-noface",
            Summary(label_set=FER2013, window_s=300, counts=(0,) * 7, no_face=300),
        ),
        (
            "summary-fer2013-hour",
            Summary(
                label_set=FER2013,
                window_s=3600,
                counts=(120, 3, 50, 1500, 400, 77, 1300),
                no_face=150,
                mean_confidence=0.72,
            ),
        ),
        (
            "summary-fer2013-tie",
            Summary(
                label_set=FER2013,
                window_s=10,
                counts=(0, 0, 4, 4, 0, 0, 0),
                no_face=2,
                mean_confidence=0.5,
            ),
        ),
        (
            "summary-physio3-max",
            Summary(
                label_set=PHYSIO3,
                window_s=65536,
                counts=(65535, 0, 0),
                no_face=0,
                mean_confidence=1.0,
            ),
        ),
        (
            "vitals-physio3-full",
            Vitals(
                label_set=PHYSIO3,
                heart_rate_bpm=72,
                skin_conductance_us=3.21,
                reading=r(PHYSIO3, "happy", 0.6),
            ),
        ),
        ("vitals-physio3-hr-only", Vitals(label_set=PHYSIO3, heart_rate_bpm=180)),
        ("vitals-physio3-sc-only", Vitals(label_set=PHYSIO3, skin_conductance_us=100.0)),
        (
            "vitals-fer2013-noface",
            Vitals(
                label_set=FER2013,
                heart_rate_bpm=0,
                skin_conductance_us=0.0,
                reading=r(FER2013, None),
            ),
        ),
        ("status-defaults", Status(firmware=(1, 0, 0))),
        (
            "status-full",
            Status(
                firmware=(1, 2, 3),
                battery_percent=88,
                uptime_s=7200,
                dropped=3,
                window_s=120,
                mode=Mode.DISTRIBUTION,
                daily_budget_s=30,
                label_set_id=0,
                label_set_fingerprint=FER2013.fingerprint,
                command_seq=7,
                command_status=CommandStatus.APPLIED,
            ),
        ),
        (
            "status-max",
            Status(
                firmware=(15, 63, 63),
                protocol_version=15,
                battery_percent=100,
                uptime_s=(2**20 - 1) * 60,
                dropped=65535,
                window_s=65536,
                mode=Mode.VITALS,
                daily_budget_s=1024,
                label_set_id=23,
                label_set_fingerprint=65535,
                command_seq=255,
                command_status=CommandStatus.UNKNOWN_COMMAND,
            ),
        ),
        (
            "batch-readings-fer2013",
            Batch(
                label_set=FER2013,
                entries=(
                    BatchEntry(age_s=5, message=r(FER2013, "happy", 0.87)),
                    BatchEntry(age_s=65, message=r(FER2013, None)),
                    BatchEntry(age_s=4160, message=r(FER2013, "angry", 0.12)),
                ),
            ),
        ),
        (
            "batch-distributions-fer2013",
            Batch(
                label_set=FER2013,
                entries=(
                    BatchEntry(
                        age_s=0,
                        message=Distribution(
                            label_set=FER2013,
                            probabilities=(0.02, 0.01, 0.03, 0.87, 0.04, 0.02, 0.01),
                        ),
                    ),
                    BatchEntry(
                        age_s=600,
                        message=Distribution(
                            label_set=FER2013, probabilities=(0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4)
                        ),
                    ),
                ),
            ),
        ),
        (
            "batch-vitals-physio3",
            Batch(
                label_set=PHYSIO3,
                entries=(
                    BatchEntry(age_s=1, message=Vitals(label_set=PHYSIO3, heart_rate_bpm=70)),
                    BatchEntry(
                        age_s=2,
                        message=Vitals(
                            label_set=PHYSIO3, heart_rate_bpm=71, skin_conductance_us=2.5
                        ),
                    ),
                    BatchEntry(
                        age_s=3,
                        message=Vitals(
                            label_set=PHYSIO3,
                            heart_rate_bpm=73,
                            skin_conductance_us=2.55,
                            reading=r(PHYSIO3, "sad", 0.9),
                        ),
                    ),
                ),
            ),
        ),
    ]
    return out


INVALID = [
    {"name": "reading-too-short", "fport": 16, "hex": "01", "error": "truncated"},
    {"name": "reading-trailing", "fport": 16, "hex": "015600", "error": "trailing"},
    {"name": "reading-out-of-range", "fport": 16, "hex": "02c4", "error": "out of range"},
    {
        "name": "distribution-rank-out-of-range",
        "fport": 17,
        "hex": "ffffffff",
        "error": "out of range",
    },
    {"name": "faces-bad-length", "fport": 18, "hex": "00000000000000", "error": "length"},
    {"name": "summary-empty", "fport": 19, "hex": "", "error": "truncated"},
    {"name": "summary-leading-zero", "fport": 19, "hex": "0001", "error": "leading zero"},
    {"name": "unknown-set", "fport": 16 + 8 * 9, "hex": "0001", "error": "label set"},
    {"name": "reserved-port", "fport": 5, "hex": "00", "error": "port"},
    {"name": "lorawan-reserved-port", "fport": 224, "hex": "00", "error": "port"},
    {"name": "status-short", "fport": 2, "hex": "00", "error": "truncated"},
]


def main() -> None:
    vectors = []
    for name, message in cases():
        payload = encode(message)
        fport = port_of(message)
        decoded = decode(payload, fport=fport)
        vectors.append(
            {
                "name": name,
                "fport": fport,
                "hex": payload.hex().upper(),
                "size": len(payload),
                "message": fields(decoded),
                "senml": json.loads(encode_json(message_records(decoded))),
            }
        )
    document = {
        "format_version": 1,
        "note": "Generated by tests/vectors/make_messages.py; the contract for every language.",
        "label_sets": [
            {"id": s.id, "name": s.name, "labels": list(s.labels), "fingerprint": s.fingerprint}
            for s in BUILTIN_SETS
        ],
        "vectors": vectors,
        "invalid": INVALID,
    }
    (HERE / "messages.json").write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
