"""What a user installs: the wheel's contents and metadata, an install with only ``[webhook]``,
and the deployment files it ships (the environment file read alike by bash and systemd).

The wheel is built and installed with pip, the way docs/deployment.md says; that needs the
package index for the build backend and the extras' dependencies. Outside CI the install test
skips when the index cannot be reached.
"""

from __future__ import annotations

import email
import json
import os
import shlex
import subprocess
import sys
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "webhook" / "deploy"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pip(python: Path | str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(out), str(ROOT))
    if built.returncode != 0:
        if os.environ.get("CI") != "true" and "Could not find a version" in built.stderr:
            pytest.skip("the build backend cannot be fetched from the package index here")
        raise AssertionError(built.stdout + built.stderr)
    (path,) = out.glob("lora_emotion-*.whl")
    return path


def test_the_wheel_carries_every_module_the_types_the_deploy_files_and_the_licence(
    wheel: Path,
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_name))
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence) == (ROOT / "LICENSE").read_bytes()
        # The deploy files (Grafana's in subdirectories) and the dashboard's static assets.
        shipped = [*DEPLOY.rglob("*"), *(ROOT / "webhook" / "static").rglob("*")]
        for deployed in (p for p in shipped if p.is_file()):
            inside = f"lora_emotion/webhook/{deployed.relative_to(ROOT / 'webhook').as_posix()}"
            assert archive.read(inside) == deployed.read_bytes()
    expected = {
        f"lora_emotion/{path.relative_to(ROOT / 'src' / 'lora_emotion').as_posix()}"
        for path in (ROOT / "src" / "lora_emotion").rglob("*.py")
    } | {
        f"lora_emotion/webhook/{path.relative_to(ROOT / 'webhook').as_posix()}"
        for path in (ROOT / "webhook").rglob("*.py")
    }
    assert expected <= names, sorted(expected - names)
    assert "lora_emotion/py.typed" in names
    assert metadata["License-Expression"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert metadata["Version"] == PROJECT["version"]
    assert set(metadata.get_all("Classifier") or []) == set(PROJECT["classifiers"])
    assert "Typing :: Typed" in PROJECT["classifiers"]
    urls = metadata.get_all("Project-URL") or []
    assert {url.split(",")[0] for url in urls} == set(PROJECT["urls"])
    assert set(metadata.get_all("Provides-Extra") or []) >= {
        "webhook",
        "simulate",
        "lorawan",
        "serial",
    }


@pytest.fixture(scope="module")
def webhook_only(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtual environment with the wheel and only its ``webhook`` extra."""
    where = tmp_path_factory.mktemp("venv")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    installed = pip(python, "install", "--quiet", f"{wheel}[webhook]")
    if installed.returncode != 0:
        if os.environ.get("CI") != "true":
            pytest.skip(f"pip could not install the webhook extra here: {installed.stderr[-300:]}")
        raise AssertionError(installed.stdout + installed.stderr)
    yield where


def run(environment: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(environment / "bin" / "lora-emotion"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.slow
def test_an_install_with_only_the_webhook_extra(
    webhook_only: Path, wheel: Path, tmp_path: Path
) -> None:
    version = run(webhook_only, "--version")
    assert (version.returncode, version.stdout) == (0, f"lora-emotion {PROJECT['version']}\n")

    listing = run(webhook_only, "--help")
    assert listing.returncode == 0
    for command in ("encode", "decode", "airtime", "budget", "serve", "feed"):
        assert f"\n    {command} " in listing.stdout
    assert "[needs: simulate]" in listing.stdout  # simulate
    assert "[needs: webhook, simulate]" in listing.stdout  # demo

    for argv in (["demo"], ["simulate", "--count", "1"], ["monitor", "--help"]):
        result = run(webhook_only, *argv, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert f"pip install '{wheel}[" in result.stderr  # from where this copy came
    assert list(tmp_path.iterdir()) == []  # the demo started nothing

    check = run(webhook_only, "serve", "--check", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert (tmp_path / "lora-emotion.sqlite3").is_file()

    # The deployment files, where docs/deployment.md finds them.
    found = subprocess.run(
        [
            str(webhook_only / "bin" / "python"),
            "-c",
            'import importlib.resources as r; print(r.files("lora_emotion.webhook") / "deploy")',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    deploy = Path(found.stdout.strip())
    assert sorted(p.name for p in deploy.iterdir()) == sorted(p.name for p in DEPLOY.iterdir())

    # The line printed is the command to run, and it is enough.
    line = run(webhook_only, "simulate", "--count", "1").stderr.strip()
    command = shlex.split(line.rsplit(": ", 1)[1])
    assert command[1:4] == ["-m", "pip", "install"]
    assert subprocess.run([*command, "--quiet"], capture_output=True, timeout=600).returncode == 0
    dry = run(webhook_only, "simulate", "--dry-run", "--count", "1")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["body"].startswith('[{"bn":"urn:dev:DEVEUI:')


# --- the environment file ---------------------------------------------------------------------


def systemd_environment_file(text: str) -> dict[str, str]:
    """Assignments as systemd reads an ``EnvironmentFile=`` (systemd.exec(5), env-file parsing).

    Comments start with ``#`` or ``;``; leading whitespace of a value is skipped; in single
    quotes everything is literal; in double quotes a backslash escapes ``"``, ``\\``, `` ` ``
    and ``$``; outside quotes a backslash escapes any character and trailing whitespace is
    dropped; quoted and unquoted parts of a value join; a backslash at a line end continues it.
    """
    values: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        stripped = line.lstrip()
        if not stripped or stripped[0] in "#;":
            continue
        key, equals, rest = stripped.partition("=")
        assert equals, f"not an assignment: {line!r}"
        rest = rest.lstrip()
        value: list[str] = []
        trailing = 0  # unquoted trailing whitespace, dropped at the end
        position = 0
        quote = ""
        while True:
            if position >= len(rest):
                if quote or (value and value[-1] == "\\\n"):
                    # A quote or a continuation spans lines.
                    rest += "\n" + lines[index]
                    index += 1
                    continue
                break
            char = rest[position]
            position += 1
            if quote == "'":
                if char == "'":
                    quote = ""
                else:
                    value.append(char)
            elif quote == '"':
                if char == '"':
                    quote = ""
                elif char == "\\" and position < len(rest) and rest[position] in '"\\`$':
                    value.append(rest[position])
                    position += 1
                else:
                    value.append(char)
            elif char in "'\"":
                quote, trailing = char, 0
            elif char == "\\":
                assert position < len(rest), "continuation lines are not used here"
                value.append(rest[position])
                position += 1
                trailing = 0
            else:
                value.append(char)
                trailing = trailing + 1 if char.isspace() else 0
        joined = "".join(value)
        values[key.strip()] = joined[: len(joined) - trailing] if trailing else joined
    return values


def bash_environment_file(path: Path) -> dict[str, str]:
    """Assignments as ``set -a; . file`` in bash exports them."""
    script = (
        'set -a; . "$1"; exec "$2" -c '
        "'import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
        'if k.startswith("LORA_EMOTION_")}))\''
    )
    result = subprocess.run(
        ["bash", "-c", script, "bash", str(path), sys.executable],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=True,
    )
    assert result.stderr == ""
    values: dict[str, str] = json.loads(result.stdout)
    return values


def test_the_environment_file_reads_the_same_in_bash_and_systemd() -> None:
    path = DEPLOY / "webhook.env"
    systemd = systemd_environment_file(path.read_text())
    assert set(systemd) == {
        "LORA_EMOTION_DESTINATIONS",
        "LORA_EMOTION_READ_TOKENS",
        "LORA_EMOTION_DATABASE_URL",
    }
    assert bash_environment_file(path) == systemd
    destinations = json.loads(systemd["LORA_EMOTION_DESTINATIONS"])
    assert all(isinstance(secrets, list) and len(secrets) == 2 for secrets in destinations.values())
    assert len(systemd["LORA_EMOTION_READ_TOKENS"].split(",")) == 2
    # Neither reader expands anything in them.
    assert not any(char in value for value in systemd.values() for char in "$`\\")


def test_the_systemd_reading_follows_its_quoting_rules() -> None:
    """The reference parser above, on the cases that tell systemd and a careless reader apart."""
    text = (
        "# comment\n; also a comment\n\n"
        "A=plain value   \n"
        "B='single \"quoted\" $HOME'\n"
        'C="double \\"esc\\" \\$x \\n"\n'
        "D=mix'ed 'parts\n"
        "E=back\\ slash\n"
        "  F =  leading\n"
    )
    assert systemd_environment_file(text) == {
        "A": "plain value",
        "B": 'single "quoted" $HOME',
        "C": 'double "esc" $x \\n',
        "D": "mixed parts",
        "E": "back slash",
        "F": "leading",
    }
