"""codecs/js decodes what the Python decoder decodes, and rejects what it rejects.

Each run draws 10 000 uplinks from a fixed seed (LORA_EMOTION_JS_SEED overrides it): valid
messages of every type and label set (user sets of 2, 4 and 64 classes included), the same
with a bit flipped or a byte cut or added, random bytes of a valid length, random bytes on
random ports, and ThingsML packs (valid, mutated and random CBOR). All go through one node
process; each answer must equal decode_uplink's records, or both must be errors. Hypothesis
adds shrinking examples through a long-lived node process.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st
from js_codec_support import NodeCodec, agrees, reference, run_batch

from lora_emotion import downlink, thingsml
from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.labels import LabelSet, parse_label_sets
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
    encode,
    port_of,
)
from lora_emotion.senml import Record

SEED = int(os.environ.get("LORA_EMOTION_JS_SEED", "20261206"))
CASES = 10_000
USER_SETS = {
    "label_sets": [
        {"id": 6, "name": "speech4", "labels": ["neutral", "happy", "sad", "angry"]},
        {"id": 9, "name": "wide64", "labels": [f"c{i:02d}" for i in range(64)]},
        {"id": 10, "name": "duo", "labels": ["yes", "no"]},
    ]
}
REGISTRY = parse_label_sets(USER_SETS)
SETS = list(REGISTRY.sets.values())
VARIABLES = {"labelSets": json.dumps(USER_SETS)}


def _composition(rng: random.Random, total: int, parts: int) -> list[int]:
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def _reading(rng: random.Random, label_set: LabelSet) -> Reading:
    if rng.random() < 0.1:
        return Reading(label_set=label_set, label=None)
    return Reading(
        label_set=label_set,
        label=rng.choice(label_set.labels),
        confidence=rng.randint(0, 100) / 100,
    )


def _distribution(rng: random.Random, label_set: LabelSet) -> Distribution:
    shares = _composition(rng, 100, len(label_set))
    if rng.random() < 0.3:  # peaked, as models produce
        shares = [0] * len(label_set)
        shares[rng.randrange(len(label_set))] = 100
    return Distribution(label_set=label_set, probabilities=tuple(s / 100 for s in shares))


def _vitals(rng: random.Random, label_set: LabelSet) -> Vitals:
    heart = rng.randint(0, 250) if rng.random() < 0.8 else None
    skin = rng.randint(0, 10_000) / 100 if heart is None or rng.random() < 0.7 else None
    reading = _reading(rng, label_set) if rng.random() < 0.6 else None
    return Vitals(
        label_set=label_set, heart_rate_bpm=heart, skin_conductance_us=skin, reading=reading
    )


def _summary(rng: random.Random, label_set: LabelSet) -> Summary:
    total = rng.choice([0, rng.randint(1, 30), rng.randint(1, 65_535)])
    vector = _composition(rng, total, len(label_set) + 1)
    counts = vector[:-1]
    return Summary(
        label_set=label_set,
        window_s=rng.choice([60, rng.randint(1, 65_536)]),
        counts=tuple(counts),
        no_face=vector[-1],
        mean_confidence=rng.randint(0, 100) / 100 if any(counts) else None,
    )


def _batch(rng: random.Random, label_set: LabelSet) -> Batch:
    make = rng.choice([_reading, _distribution, _vitals])
    age = rng.randint(0, 300)
    entries = []
    for _ in range(rng.randint(1, 9)):
        entries.append(BatchEntry(age_s=age, message=make(rng, label_set)))
        age += rng.choice([0, 60, rng.randint(0, 4095)])
    for size in range(len(entries), 0, -1):  # as many as fit 51 bytes
        try:
            return Batch(label_set=label_set, entries=tuple(entries[:size]))
        except EncodeError:
            continue
    raise EncodeError("not even one entry fits", field="entries")


def _status(rng: random.Random) -> Status:
    label_set = rng.choice(SETS)
    return Status(
        firmware=(rng.randint(0, 15), rng.randint(0, 63), rng.randint(0, 63)),
        protocol_version=rng.choice([1, rng.randint(0, 15)]),
        battery_percent=rng.choice([None, rng.randint(0, 100)]),
        uptime_s=rng.randint(0, 2**26),
        dropped=rng.randint(0, 70_000),
        window_s=rng.randint(1, 65_536),
        mode=rng.choice(list(Mode)),
        daily_budget_s=rng.randint(1, 1024),
        label_set_id=label_set.id,
        label_set_fingerprint=rng.choice([label_set.fingerprint, rng.randint(0, 65_535)]),
        command_seq=rng.randint(0, 255),
        command_status=rng.choice(list(CommandStatus)),
    )


def _message(rng: random.Random) -> Message:
    label_set = rng.choice(SETS)
    kind = rng.randrange(7)
    if kind == 0:
        return _reading(rng, label_set)
    if kind == 1:
        return _distribution(rng, label_set)
    if kind == 2:
        count = rng.choice([0, 1, 2, rng.randint(0, 6)])
        faces = [_reading(rng, label_set) for _ in range(count)]
        return Faces(
            label_set=label_set,
            faces=tuple(
                Face(label=f.label or label_set.labels[0], confidence=f.confidence or 0.0)
                for f in faces
            ),
        )
    if kind == 3:
        return _summary(rng, label_set)
    if kind == 4:
        return _vitals(rng, label_set)
    if kind == 5:
        return _status(rng)
    return _batch(rng, label_set)


def _mutate(rng: random.Random, payload: bytes) -> bytes:
    data = bytearray(payload)
    choice = rng.randrange(3)
    if choice == 0 and data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif choice == 1 and data:
        del data[rng.randrange(len(data))]
    else:
        data.insert(rng.randint(0, len(data)), rng.randrange(256))
    return bytes(data)


def _value(rng: random.Random, depth: int = 0) -> object:
    """A random CBOR-able value, including what SenML CBOR rejects."""
    kind = rng.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return rng.randint(-(2**64), 2**64 - 1)
    if kind == 1:
        return rng.randint(-30, 30)
    if kind == 2:
        return rng.choice([0.5, -1.25, 1e300, 3.4028234663852886e38, 5e-324, 1.5, float("nan")])
    if kind == 3:
        return rng.choice(["", "happy", "é", "\U0001f600", "a_", "n"])
    if kind == 4:
        return rng.randbytes(rng.randint(0, 4))
    if kind == 5:
        return rng.choice([True, False, None, cbor2.undefined, cbor2.CBORSimpleValue(99)])
    if kind == 6:
        return rng.uniform(-1000, 1000)
    if kind == 7:
        return cbor2.CBORTag(rng.choice([1, 24, 99]), rng.randint(0, 9))
    if kind in (8, 9):
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys: list[object] = [0, 1, 2, 3, 6, 23, -2, 9, "x", "i_", "n", "ext", 1.5]
    return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _record(rng: random.Random) -> Record:
    fields: dict[str, Any] = {}
    name = rng.choice(["temperature", "emotion", "humidity", "count", None])
    if name:
        fields["n"] = name
    if name in ("temperature", "humidity") and rng.random() < 0.7:
        fields["u"] = {"temperature": "Cel", "humidity": "%RH"}[name]
    value_kind = rng.randrange(4)
    if value_kind == 0:
        fields["v"] = rng.choice([rng.randint(-(2**40), 2**40), rng.uniform(-100, 100), 21.5])
    elif value_kind == 1:
        fields["vs"] = rng.choice(["happy", "sad", "ünïcode"])
    elif value_kind == 2:
        fields["vb"] = rng.random() < 0.5
    else:
        fields["vd"] = rng.randbytes(rng.randint(0, 6))
    if rng.random() < 0.3:
        fields["t"] = -float(rng.randint(0, 600))
    if rng.random() < 0.2:
        fields["bn"] = "urn:dev:DEVEUI:0004A30B001C2ABC:"
        fields["bt"] = 1_700_000_000 + rng.randint(0, 1000)
    if rng.random() < 0.15:
        fields["bver"] = rng.randint(5, 12)
    if rng.random() < 0.1:
        fields["extra"] = (("note", rng.choice(["x", 1, [1, "a"], {"k": 2}])),)
    return Record(**fields)


def _thingsml(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    valid = thingsml.encode([_record(rng) for _ in range(rng.randint(1, 3))])
    if kind == 0:
        return valid
    if kind == 1:
        return _mutate(rng, valid)
    if kind == 2:
        records = [_value(rng, 1) if rng.random() < 0.2 else _record_map(rng) for _ in range(2)]
        try:
            return cbor2.dumps(records if rng.random() < 0.9 else records[0])
        except (ValueError, TypeError, cbor2.CBOREncodeError):
            return b"\x80"
    return rng.randbytes(rng.randint(0, 30))


def _record_map(rng: random.Random) -> object:
    value = _value(rng, 1)
    return value if not isinstance(value, dict) else {**value, 0: "x"}


def draw_cases(seed: int, count: int) -> list[tuple[bytes, int, str]]:
    """``count`` (payload, fport, how it was made) triples from ``seed``."""
    rng = random.Random(seed)
    cases = []
    while len(cases) < count:
        roll = rng.random()
        if roll < 0.25:
            thing = _thingsml(rng)
            cases.append((thing, 1, "thingsml"))
            continue
        if roll < 0.35:
            cases.append((rng.randbytes(rng.randint(0, 51)), rng.randrange(256), "noise"))
            continue
        try:
            message = _message(rng)
            payload = encode(message)
        except EncodeError:
            continue
        port = port_of(message)
        if roll < 0.65:
            cases.append((payload, port, "valid"))
        elif roll < 0.8:
            cases.append((_mutate(rng, payload), port, "mutated"))
        else:
            cases.append((rng.randbytes(len(payload)), port, "random of a valid length"))
    return cases


def test_ten_thousand_random_uplinks_agree_with_python(node: str) -> None:
    cases = draw_cases(SEED, CASES)
    requests = [
        {
            "fn": "decodeUplink",
            "input": {"bytes": list(payload), "fPort": fport, "variables": VARIABLES},
        }
        for payload, fport, _ in cases
    ]
    answers = run_batch(node, requests)
    outcomes: Counter[tuple[str, bool]] = Counter()
    problems = []
    for (payload, fport, how), answer in zip(cases, answers, strict=True):
        expected = reference(payload, fport, REGISTRY)
        outcomes[how, expected is not None] += 1
        problem = agrees(answer, expected)
        if problem:
            problems.append(f"seed {SEED} {how} port {fport} {payload.hex()}: {problem[:500]}")
    assert not problems, f"{len(problems)} of {CASES} differ:\n" + "\n".join(problems[:10])
    # The draw must exercise both sides of every source, or agreement would prove little.
    assert outcomes["valid", True] > 2000
    assert outcomes["mutated", True] > 100 and outcomes["mutated", False] > 100
    assert outcomes["thingsml", True] > 500 and outcomes["thingsml", False] > 500
    assert outcomes["noise", False] > 300


@settings(max_examples=300)
@given(fport=st.integers(0, 255), payload=st.binary(max_size=51))
def test_any_bytes_on_any_port(js: NodeCodec, fport: int, payload: bytes) -> None:
    variables = {"labelSets": USER_SETS}  # the object form of the device variable
    answer = js.call(
        "decodeUplink", {"bytes": list(payload), "fPort": fport, "variables": variables}
    )
    assert agrees(answer, reference(payload, fport, REGISTRY)) is None


@settings(max_examples=200)
@given(seed=st.integers(0, 2**32 - 1))
def test_generated_messages_shrink_to_a_seed(js: NodeCodec, seed: int) -> None:
    [(payload, fport, _)] = draw_cases(seed, 1)
    answer = js.call(
        "decodeUplink", {"bytes": list(payload), "fPort": fport, "variables": VARIABLES}
    )
    assert agrees(answer, reference(payload, fport, REGISTRY)) is None


def _downlink_data(decoded: downlink.Downlink) -> dict[str, Any]:
    """A decoded downlink in the codec's (and downlinks.json's) JSON shape."""
    commands: list[dict[str, Any]] = []
    for command in decoded.commands:
        if isinstance(command, downlink.SetWindow):
            commands.append({"op": "set_window", "window_s": command.window_s})
        elif isinstance(command, downlink.SetMode):
            commands.append({"op": "set_mode", "mode": command.mode.name.lower()})
        elif isinstance(command, downlink.SetDailyBudget):
            commands.append({"op": "set_daily_budget", "budget_s": command.budget_s})
        elif isinstance(command, downlink.SetLabelSet):
            commands.append(
                {
                    "op": "set_label_set",
                    "set_id": command.set_id,
                    "classes": command.classes,
                    "fingerprint": command.fingerprint,
                }
            )
        elif isinstance(command, downlink.SendStatus):
            commands.append({"op": "send_status"})
        else:
            commands.append({"op": "set_status_interval", "interval_min": command.interval_min})
    return {"seq": decoded.seq, "commands": commands}


def _downlink_bytes(rng: random.Random) -> bytes:
    """Mostly well-formed command sequences with random values, some cut short or noise."""
    if rng.random() < 0.1:
        return rng.randbytes(rng.randint(0, 12))
    data = bytearray([rng.randrange(256)])
    for _ in range(rng.randint(0, 5)):
        opcode = rng.choice([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 0, 7, rng.randrange(256)])
        size = {1: 2, 2: 1, 3: 2, 4: 4, 5: 0, 6: 2}.get(opcode, 0)
        args = rng.randbytes(size)
        if opcode == 2 and rng.random() < 0.8:
            args = bytes([rng.randrange(4)])
        if opcode == 3 and rng.random() < 0.8:
            args = rng.randrange(1024).to_bytes(2, "big")
        if opcode == 4 and rng.random() < 0.8:
            args = bytes([rng.randrange(24), rng.randrange(2, 65)]) + rng.randbytes(2)
        data += bytes([opcode]) + args
    if rng.random() < 0.1:
        del data[rng.randrange(len(data)) :]
    return bytes(data)


def test_random_downlinks_agree_with_python_both_ways(node: str) -> None:
    rng = random.Random(SEED)
    payloads = [_downlink_bytes(rng) for _ in range(3000)]
    requests = [
        {"fn": "decodeDownlink", "input": {"bytes": list(p), "fPort": downlink.COMMAND_PORT}}
        for p in payloads
    ]
    expected: list[dict[str, Any] | None] = []
    for payload in payloads:
        try:
            expected.append(_downlink_data(downlink.decode(payload)))
        except DecodeError:
            expected.append(None)
    valid = [(p, e) for p, e in zip(payloads, expected, strict=True) if e is not None]
    requests += [{"fn": "encodeDownlink", "input": {"data": e}} for _, e in valid]
    answers = run_batch(node, requests)
    decoded, encoded = answers[: len(payloads)], answers[len(payloads) :]
    for payload, want, answer in zip(payloads, expected, decoded, strict=True):
        if want is None:
            assert set(answer) == {"errors"}, (payload.hex(), answer)
        else:
            assert answer.get("data") == want and "errors" not in answer, (payload.hex(), answer)
    for (payload, _), answer in zip(valid, encoded, strict=True):
        assert answer.get("bytes") == list(payload), (payload.hex(), answer)
    assert 500 < len(valid) < 2500  # both outcomes well represented


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_NUMBER = st.one_of(
    st.integers(-(2**64) + 1, 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
_RECORDS = st.lists(
    st.builds(
        Record,
        n=st.one_of(st.none(), st.sampled_from(["temperature", "emotion", "x:y"]), _TEXT),
        u=st.one_of(st.none(), st.sampled_from(["Cel", "%RH", "/"])),
        v=st.one_of(st.none(), _NUMBER),
        vs=st.one_of(st.none(), _TEXT),
        vb=st.one_of(st.none(), st.booleans()),
        vd=st.one_of(st.none(), st.binary(max_size=6)),
        t=st.one_of(st.none(), _NUMBER),
        bver=st.one_of(st.none(), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200)
@given(records=_RECORDS, cut=st.integers(0, 60))
def test_thingsml_packs_and_their_prefixes(js: NodeCodec, records: list[Record], cut: int) -> None:
    """Any pack thingsml.encode writes (names become indexes where they match) decodes alike,
    and so does every prefix of it (which is all errors but the whole)."""
    payload = thingsml.encode(records)
    for data in (payload, payload[:cut]):
        answer = js.call("decodeUplink", {"bytes": list(data), "fPort": 1})
        assert agrees(answer, reference(data, 1, REGISTRY)) is None
