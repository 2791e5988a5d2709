"""The command line as a whole: listing, --version, exit statuses, missing extras.

Missing extras are produced for real in a subprocess: a meta path finder refuses to import the
named top-level modules, as an environment without them would. The distributions' metadata is
still there, so this exercises the path where a command imports and fails at its first use;
tests/test_packaging.py runs the other one in a virtual environment that lacks the extras.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from lora_emotion import cli

ROOT = Path(__file__).resolve().parents[2]

BLOCKING_RUNNER = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
from lora_emotion.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_without(blocked: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKING_RUNNER, blocked, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """The installed ``lora-emotion`` script, as a user runs it."""
    script = Path(sys.executable).with_name("lora-emotion")
    return subprocess.run(
        [str(script), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def listing(help_text: str) -> dict[str, str]:
    """``name -> summary`` from the COMMAND section of ``--help`` (wrapped lines joined)."""
    section = help_text.split("COMMAND\n", 1)[1].split("\n\n", 1)[0]
    commands: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        match = re.match(r"    (\w+)\s+(.*)", line)
        if match:
            name = match.group(1)
            commands[name] = match.group(2)
        else:
            commands[name] += " " + line.strip()
    return commands


def test_version_is_the_installed_distributions() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (
        result.stdout.strip()
        == f"lora-emotion {version}"
        == f"lora-emotion {metadata.version('lora-emotion')}"
    )


def test_help_lists_every_command_with_the_summary_its_module_registers() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert listing(result.stdout) == {c.name: c.summary for c in cli.COMMANDS}
    assert "exit status:" in result.stdout
    for status in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {status}" in result.stdout


def test_errors_exit_1_with_one_line_and_usage_errors_exit_2() -> None:
    error = run_cli("decode", "XYZ", "--port", "16")
    assert error.returncode == 1
    assert error.stdout == ""
    assert error.stderr.count("\n") == 1
    assert error.stderr.startswith("lora-emotion decode: error: ")
    usage = run_cli("decode", "0186", "--port", "16", "--no-such-option")
    assert usage.returncode == 2
    assert "unrecognized arguments: --no-such-option" in usage.stderr
    assert run_cli("no-such-command").returncode == 2
    assert run_cli().returncode == 2  # a command is required
    assert run_cli("airtime", "4", "--sf", "twelve").returncode == 2


def test_every_command_is_listed_when_its_extras_are_missing() -> None:
    result = run_without("serial,cryptography,httpx,fastapi,uvicorn,sqlalchemy", "--help")
    assert result.returncode == 0, result.stderr
    listed = listing(result.stdout)
    assert list(listed) == [c.name for c in cli.COMMANDS]
    # feed and monitor import pyserial on import: they are listed with what they need.
    assert listed["feed"].endswith("[needs: serial]")
    assert listed["monitor"].endswith("[needs: serial]")


@pytest.mark.parametrize(
    ("blocked", "argv", "extras"),
    [
        ("serial", ["feed", "--help"], "serial"),
        ("serial", ["monitor", "/dev/ttyACM0"], "serial"),
        ("cryptography", ["frame", "encode", "--devaddr", "26011BDA", "--fcnt", "1"], "lorawan"),
        ("cryptography", ["simulate", "--dry-run", "--count", "1"], "simulate"),
        ("httpx", ["simulate", "--count", "1", "--url", "http://127.0.0.1:9/"], "simulate"),
        ("cryptography", ["demo", "--port", "0", "--duration", "0"], "webhook,simulate"),
        ("uvicorn", ["demo", "--port", "0", "--duration", "0"], "webhook,simulate"),
        ("sqlalchemy", ["serve", "--check"], "webhook"),
    ],
)
def test_a_missing_extra_is_one_line_naming_the_pip_install(
    blocked: str, argv: list[str], extras: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKING_RUNNER, blocked, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"lora-emotion {argv[0]}: error: needs the ")
    assert f"(missing {blocked})" in line
    # The install command names this checkout (an editable install) and the extras.
    assert line.endswith(f"-m pip install -e '{ROOT}[{extras}]'"), line
    assert not (tmp_path / "lora-emotion-demo.sqlite3").exists()  # nothing was started


def test_the_install_command_follows_where_the_package_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Origin:
        def __init__(self, direct_url: object) -> None:
            self.text = None if direct_url is None else json.dumps(direct_url)

        def read_text(self, name: str) -> str | None:
            assert name == "direct_url.json"
            return self.text

    def use(direct_url: object) -> None:
        monkeypatch.setattr(cli.metadata, "distribution", lambda name: Origin(direct_url))

    use({"url": "file:///tmp/dist/lora_emotion-0.1.0-py3-none-any.whl", "archive_info": {}})
    assert cli.install_command(["webhook"]).endswith(
        "-m pip install '/tmp/dist/lora_emotion-0.1.0-py3-none-any.whl[webhook]'"
    )
    use({"url": "file:///src/lora emotion", "dir_info": {"editable": True}})
    assert cli.install_command(["serial"]).endswith("-m pip install -e '/src/lora emotion[serial]'")
    use(None)  # from an index
    assert cli.install_command(["webhook", "simulate"]).endswith(
        "-m pip install 'lora-emotion[webhook,simulate]'"
    )


def test_the_declared_extras_exist_and_resolve_to_what_pyproject_lists() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for command in cli.COMMANDS:
        assert set(command.extras) <= set(extras), command
    names = cli._requirements_of(["simulate"])
    assert "httpx" in names and "cryptography" in names  # simulate pulls in lorawan
    assert cli.missing_distributions(["webhook", "simulate", "serial", "lorawan"]) == []
