"""codecs/js against the golden vectors, as ECMAScript 5.1, and in its console build.

Vector files that apply: messages.json (uplinks and invalid payloads), thingsml.json (port 1)
and downlinks.json (FPort 3 both ways). The others describe the relay's serial link, airtime
and the ledger, which the codec does not handle.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from js_codec_support import CODEC_DIR, ROOT, agrees, reference, run_batch, same

from lora_emotion import downlink
from lora_emotion.errors import DecodeError
from lora_emotion.labels import DEFAULT_REGISTRY
from lora_emotion.uplink import decode_uplink

VECTORS = ROOT / "tests" / "vectors"
MESSAGES = json.loads((VECTORS / "messages.json").read_text())
THINGSML = json.loads((VECTORS / "thingsml.json").read_text())
DOWNLINKS = json.loads((VECTORS / "downlinks.json").read_text())
BUILDS = ("source", "console")
#: The Things Stack console's limit for a pasted payload formatter.
CONSOLE_LIMIT = 40 * 1000


def _uplink(build: str, hex_payload: str, fport: int) -> dict[str, Any]:
    return {
        "build": build,
        "fn": "decodeUplink",
        "input": {"bytes": list(bytes.fromhex(hex_payload)), "fPort": fport},
    }


@pytest.mark.parametrize("build", BUILDS)
def test_parses_as_ecmascript_5_1(node: str, build: str) -> None:
    [answer] = run_batch(node, [{"fn": "parseES5", "build": build}])
    assert answer == {"ok": True}


def test_the_es5_check_rejects_later_syntax(node: str, tmp_path: Path) -> None:
    """The parser really is strict: what TTN's runtime lacks fails it."""
    script = (
        "const acorn = require(process.argv[1]);"
        "for (const s of ['let a = 1;', 'var f = () => 1;', 'var s = `t`;', 'class A {}']) {"
        "  try { acorn.parse(s, {ecmaVersion: 5}); console.log('accepted ' + s); }"
        "  catch (e) { console.log('rejected'); } }"
    )
    result = subprocess.run(
        [node, "-e", script, str(CODEC_DIR / "node_modules" / "acorn")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["rejected"] * 4


def test_console_build_is_current_and_fits_the_console(node: str) -> None:
    built = subprocess.run(
        [node, str(CODEC_DIR / "build.js"), "--stdout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (CODEC_DIR / "lora-emotion-codec.console.js").read_text()
    assert built == committed, "run: cd codecs/js && npm run build"
    assert len(committed.encode()) < CONSOLE_LIMIT


def _foreign_fingerprint(vector: dict[str, Any]) -> bool:
    if vector["fport"] != 2:
        return False
    fields = {r["n"]: r.get("v", r.get("vs")) for r in vector["senml"]}
    label_set = DEFAULT_REGISTRY.get(int(fields["labelSetId"]))
    return label_set is None or f"{label_set.fingerprint:04x}" != fields["labelSetFingerprint"]


@pytest.mark.parametrize("build", BUILDS)
def test_every_message_vector(node: str, build: str) -> None:
    vectors = MESSAGES["vectors"]
    answers = run_batch(node, [_uplink(build, v["hex"], v["fport"]) for v in vectors])
    for vector, answer in zip(vectors, answers, strict=True):
        # A status whose label-set fingerprint is not the decoder's gets a warning.
        allowed = {"data", "warnings"} if _foreign_fingerprint(vector) else {"data"}
        assert set(answer) == allowed, (vector["name"], answer)
        assert same(answer["data"]["records"], vector["senml"]), (vector["name"], answer)
        expected = reference(bytes.fromhex(vector["hex"]), vector["fport"], DEFAULT_REGISTRY)
        assert agrees(answer, expected) is None


@pytest.mark.parametrize("build", BUILDS)
def test_every_invalid_message_vector(node: str, build: str) -> None:
    vectors = MESSAGES["invalid"]
    answers = run_batch(node, [_uplink(build, v["hex"], v["fport"]) for v in vectors])
    for vector, answer in zip(vectors, answers, strict=True):
        assert set(answer) == {"errors"}, (vector["name"], answer)
        [error] = answer["errors"]
        assert vector["error"] in error, (vector["name"], error)
        with pytest.raises(DecodeError) as raised:
            decode_uplink(bytes.fromhex(vector["hex"]), fport=vector["fport"])
        assert error == str(raised.value), "worded as the Python reference words it"


@pytest.mark.parametrize("build", BUILDS)
def test_every_thingsml_vector(node: str, build: str) -> None:
    answers = run_batch(node, [_uplink(build, v["hex"], v["fport"]) for v in THINGSML])
    for vector, answer in zip(THINGSML, answers, strict=True):
        assert set(answer) == {"data"}, (vector["name"], answer)
        assert same(answer["data"]["records"], vector["records"]), (vector["name"], answer)


@pytest.mark.parametrize("build", BUILDS)
def test_every_downlink_vector_both_ways(node: str, build: str) -> None:
    vectors = DOWNLINKS["downlinks"]
    requests = [
        {
            "build": build,
            "fn": "decodeDownlink",
            "input": {"bytes": list(bytes.fromhex(v["hex"])), "fPort": DOWNLINKS["port"]},
        }
        for v in vectors
    ]
    requests += [
        {"build": build, "fn": "encodeDownlink", "input": {"data": v["python"]}}
        for v in vectors
        if v["python"] is not None
    ]
    answers = run_batch(node, requests)
    decoded, encoded = answers[: len(vectors)], iter(answers[len(vectors) :])
    for vector, answer in zip(vectors, decoded, strict=True):
        if vector["python"] is None:
            assert set(answer) == {"errors"}, (vector["name"], answer)
            with pytest.raises(DecodeError) as raised:
                downlink.decode(bytes.fromhex(vector["hex"]))
            assert answer["errors"] == [str(raised.value)]
            continue
        assert answer["data"] == vector["python"], vector["name"]
        # The wire format allows what the relay refuses (a wrong built-in fingerprint, more
        # than 16 classes): the codec says so as a warning, both ways.
        relay_refuses = vector["device"] != "applied"
        assert bool(answer.get("warnings")) == relay_refuses, (vector["name"], answer)
        again = next(encoded)
        assert again["bytes"] == list(bytes.fromhex(vector["hex"])), vector["name"]
        assert again["fPort"] == DOWNLINKS["port"]
        assert bool(again.get("warnings")) == relay_refuses, (vector["name"], again)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"seq": 256, "commands": []}, "seq"),
        ({"seq": 1, "commands": [{"op": "set_mode", "mode": "sleep"}]}, "commands[0].mode"),
        ({"seq": 1, "commands": [{"op": "set_window", "window_s": 0}]}, "commands[0].window_s"),
        ({"seq": 1, "commands": [{"op": "reboot"}]}, "commands[0].op"),
        ({"seq": 1, "commands": [{"op": "send_status"}] * 51}, "commands"),
        (None, "data"),
    ],
)
def test_encode_downlink_errors_name_the_field(js: Any, data: object, field: str) -> None:
    answer = js.call("encodeDownlink", {"data": data})
    assert set(answer) == {"errors"}
    assert answer["errors"][0].startswith(field + ":"), answer


def test_decode_downlink_wants_the_command_port(js: Any) -> None:
    answer = js.call("decodeDownlink", {"bytes": [1, 5], "fPort": 16})
    assert answer == {"errors": ["fport: port 16 carries no command; commands go on port 3"]}


def test_bad_input_bytes_are_an_error_not_an_exception(js: Any) -> None:
    for bytes_ in (None, [1, 256], [1.5], "0186"):
        answer = js.call("decodeUplink", {"bytes": bytes_, "fPort": 16})
        assert set(answer) == {"errors"}, answer
        assert answer["errors"][0].startswith("bytes:")


def _cbor_nest(depth: int) -> str:
    """A pack whose record holds an extension field nested ``depth`` arrays deep."""
    return "81a1617a" + "81" * depth + "00"


#: ThingsML edge cases where a CBOR reader could differ from cbor2 and the SenML checks.
THINGSML_EDGES = [
    _cbor_nest(62),  # 64 containers: the deepest cbor2 accepts here
    _cbor_nest(63),
    "81a1617a3bffffffffffffffff",  # -2**64: out of SenML's range
    "81a1617a3bfffffffffffffffe",  # -2**64 + 1
    "81a1617a1bffffffffffffffff",  # 2**64 - 1
    "81a20061780220",  # v = -1
    "81a200617802f90001",  # smallest subnormal half
    "81a200617802fa00000001",  # smallest subnormal single
    "81a200617802fb0000000000000001",  # smallest subnormal double
    "81a200617802fb7fefffffffffffff",  # largest double
    "81a200617802f97c00",  # infinity
    "81a200617802f97e00",  # NaN
    "81a1695f5f70726f746f5f5f01",  # an extension field named __proto__ (must-understand)
    "81a1617aa1695f5f70726f746f5f5f01",  # a nested key __proto__
    "81a1617a7f6161ff",  # indefinite text
    "81a1617a7f4161ff",  # byte chunk in indefinite text
    "81a1617a5f4101ff",  # indefinite bytes
    "81a1617af7",  # undefined
    "81a1617af820",  # simple value 32
    "81a1617af818",  # simple value below 32 in two bytes
    "81a1617ac100",  # a tag
    "81a1617aff",  # a stray break
    "81a1617a1c",  # reserved additional information
    "81a1617a62c3",  # truncated UTF-8
    "81a1617a62eda080",  # a UTF-16 surrogate in UTF-8
    "81a1617a62c081",  # overlong UTF-8
    "81a1617a64f4908080",  # above U+10FFFF
    "81a2011737f40a",  # i_ as an index 23 with a bool? (23: -24, then a bool key)
    "81a2173702f93e00",  # temperature by index
    "81a217370061" + "78",  # index and name
    "81a2173703616117",  # measurement index twice is impossible; index and vs
    "81a2183702f93e00",  # 24 is no label
    "81a3173763695f176101f93e00",
    "81a2176169026161",  # i_ as text label with a text value
    "81a2626c5f0102f93e00",  # must-understand extension label
    "81a201f93c000101",  # duplicate key
    "81a16176f93e00",  # text label 'v'
    "9fa10061616102ff",  # indefinite array, map
    "bf00616eff",  # a map where the pack should be
    "81a1a0006100",  # a map as a key
    "81a1f5006100",  # true as a key
    "81a10001",  # n is a number
    "81a1201b0000000000000001",  # bver from an 8-byte integer
    "81a120fa40a00000",  # bver 5.0 is not an integer
    "81a10461",  # truncated
    "8181",
    "80",
    "81a0",
    "8100",
    "a0",
    "",
    "81a0ff",
]


@pytest.mark.parametrize("build", BUILDS)
def test_thingsml_edges_agree_with_python(node: str, build: str) -> None:
    answers = run_batch(node, [_uplink(build, h, 1) for h in THINGSML_EDGES])
    for payload, answer in zip(THINGSML_EDGES, answers, strict=True):
        expected = reference(bytes.fromhex(payload), 1, DEFAULT_REGISTRY)
        assert agrees(answer, expected) is None, (payload, answer, expected)


def _all_vector_calls(build: str) -> list[dict[str, Any]]:
    calls = [_uplink(build, v["hex"], v["fport"]) for v in MESSAGES["vectors"] + THINGSML]
    calls += [_uplink(build, v["hex"], v["fport"]) for v in MESSAGES["invalid"]]
    calls += [
        {
            "fn": "decodeDownlink",
            "input": {"bytes": list(bytes.fromhex(v["hex"])), "fPort": DOWNLINKS["port"]},
        }
        for v in DOWNLINKS["downlinks"]
    ]
    calls += [
        {"fn": "encodeDownlink", "input": {"data": v["python"]}}
        for v in DOWNLINKS["downlinks"]
        if v["python"] is not None
    ]
    return calls


@pytest.mark.parametrize("build", BUILDS)
def test_runs_without_the_es2015_library(node: str, build: str) -> None:
    """acorn checks syntax only: run every vector where Map, Object.assign, Array.from, typed
    arrays, Math.trunc, String.prototype.padStart ... do not exist, as in TTN's runtime."""
    calls = _all_vector_calls(build)
    [sandboxed] = run_batch(node, [{"fn": "es5Sandbox", "build": build, "calls": calls}])
    assert "thrown" not in sandboxed, sandboxed
    assert sandboxed["stripped"] == "undefined,undefined,undefined,undefined,undefined"
    plain = run_batch(node, [{**call, "build": build} for call in calls])
    assert sandboxed["answers"] == plain


@pytest.mark.parametrize("build", BUILDS)
def test_every_vector_in_an_es5_interpreter(node: str, build: str) -> None:
    """JS-Interpreter (npm js-interpreter) is an ECMAScript 5 engine with only ES5 built-ins,
    interpreted like TTN's runtime: every vector gives there what it gives under node."""
    calls = _all_vector_calls(build)
    [interpreted] = run_batch(node, [{"fn": "es5Interpreter", "build": build, "calls": calls}])
    assert isinstance(interpreted, list), interpreted
    plain = run_batch(node, [{**call, "build": build} for call in calls])
    assert interpreted == plain
