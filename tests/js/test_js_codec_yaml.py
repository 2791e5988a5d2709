"""The device-repository codec YAML: current with the vectors, and every example holds.

js-yaml reads the committed file as The Things Network's repository tooling does, and each
example's input goes through the codec its fileName names (and the console build); the output
must be exactly the example's output.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from js_codec_support import CODEC_DIR, run_batch, same

YAML = CODEC_DIR / "lora-emotion-codec.yaml"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_codec_yaml", CODEC_DIR / "make_codec_yaml.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_yaml_is_what_the_script_writes() -> None:
    assert YAML.read_text(encoding="utf-8") == _generator().render(), (
        "run: python codecs/js/make_codec_yaml.py"
    )


@pytest.mark.parametrize("build", [None, "console"])
def test_every_example_holds(node: str, build: str | None) -> None:
    request: dict[str, Any] = {"fn": "yamlExamples", "path": str(YAML)}
    if build:
        request["build"] = build
    [answer] = run_batch(node, [request])
    assert "thrown" not in answer, answer
    assert answer["fileNames"] == ["lora-emotion-codec.js"] * 3
    results = answer["results"]
    sections = {r["section"] for r in results}
    assert sections == {"uplinkDecoder", "downlinkEncoder", "downlinkDecoder"}
    assert len(results) == sum(len(v) for v in _generator().examples().values())
    assert sum("errors" in r["expected"] for r in results) > 10
    for result in results:
        assert same(result["actual"], result["expected"]), result
