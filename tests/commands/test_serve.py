"""``lora-emotion serve``: options, --check, configuration errors (serving itself is exercised by
tests/webhook/test_reliability.py, which runs this command as a server process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lora_emotion.webhook.migrations import MIGRATIONS

from lora_emotion.cli import main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LORA_EMOTION_CONFIG",
        "LORA_EMOTION_DATABASE_URL",
        "LORA_EMOTION_DESTINATIONS",
        "LORA_EMOTION_READ_TOKENS",
        "LORA_EMOTION_ENVIRONMENT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_help_names_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for text in ("--workers", "--config", "LORA_EMOTION_DESTINATIONS", "examples:"):
        assert text in out


def test_check_migrates_the_default_store_and_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--check"]) == 0
    assert (tmp_path / "lora-emotion.sqlite3").is_file()
    err = capsys.readouterr().err
    assert "embedded SQLite file" in err
    assert f"schema version {MIGRATIONS[-1].version}" in err


def test_check_reads_a_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "webhook.toml"
    database = tmp_path / "from-file.sqlite3"
    config.write_text(
        f'database_url = "sqlite:///{database}"\nread_tokens = ["{"t" * 40}"]\n'
        "[destinations]\n"
        '"plug-a" = ["Secret-A-0123456789-abcdefghij-XY!", '
        '"Secret-B-0123456789-abcdefghij-XY!"]\n'
    )
    assert main(["serve", "--check", "--config", str(config)]) == 0
    assert database.is_file()
    assert "1 KPN destination(s), 1 read token(s)" in capsys.readouterr().err


def test_production_refuses_weak_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_EMOTION_ENVIRONMENT", "production")
    monkeypatch.setenv("LORA_EMOTION_DESTINATIONS", json.dumps({"plug": ["changethis"]}))
    assert main(["serve", "--check"]) == 1
    err = capsys.readouterr().err
    assert "refusing to start in production" in err
    assert "changethis" not in err


def test_an_unreachable_store_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://postgres@127.0.0.1:1/none"
    assert main(["serve", "--check", "--database-url", url]) == 1
    assert "cannot open the store" in capsys.readouterr().err
