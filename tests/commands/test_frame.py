"""``lora-emotion frame``: decode and encode, keys from flags or environment, never printed."""

from __future__ import annotations

import json

import pytest

from lora_emotion.cli import main

README_PHY = "40F17DBE4900020001954378762B11FF0D"
README_NWK = "44024241ED4CE9A68C6A8BC055233FD3"
README_APP = "EC925802AE430CA77FD3DD73CB2CC588"
CLI_KEYS = ["--nwkskey", README_NWK, "--appskey", README_APP]
# Valid keys that do not open README_PHY: in the environment they prove that the flags won.
OTHER_NWK = "000102030405060708090a0b0c0d0e0f"
OTHER_APP = "f0e0d0c0b0a090807060504030201000"

NWK_ENV = "LORA_EMOTION_NWKSKEY"
APP_ENV = "LORA_EMOTION_APPSKEY"


@pytest.fixture(autouse=True)
def _no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys exported in the shell that runs the suite must not make a missing key pass."""
    monkeypatch.delenv(NWK_ENV, raising=False)
    monkeypatch.delenv(APP_ENV, raising=False)


def _assert_no_keys(*texts: str) -> None:
    for text in texts:
        for key in (README_NWK, README_APP, OTHER_NWK, OTHER_APP):
            assert key.lower() not in text.lower()
            assert key[:16].lower() not in text.lower()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    _assert_no_keys(out, err)
    return code, out, err


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    out, err = capsys.readouterr()
    _assert_no_keys(out, err)
    return out, err


def test_decode_prints_fields_and_plaintext(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "frame", "decode", README_PHY, *CLI_KEYS)
    assert code == 0
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines["MType"] == "unconfirmed data up"
    assert lines["DevAddr"] == "49BE7DF1"
    assert lines["FCnt"] == "2 (on air 0x0002)"
    assert lines["FPort"] == "1"
    assert lines["MIC"] == "2b11ff0d ok"
    assert lines["FRMPayload"] == b"test".hex()


def test_decode_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "frame", "decode", README_PHY, *CLI_KEYS, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["mic_ok"] is True
    assert report["mtype"] == "UNCONFIRMED_UP"
    assert (report["dev_addr"], report["fcnt"], report["fport"]) == ("49BE7DF1", 2, 1)
    assert report["frm_payload"] == b"test".hex()


def test_encode_matches_published_frame(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["frame", "encode", "--devaddr", "49BE7DF1", "--fcnt", "2", "--fport", "1"]
    code, out, _ = _cli(capsys, *argv, "--payload", b"test".hex(), *CLI_KEYS)
    assert code == 0
    assert out.strip() == README_PHY.lower()


def test_counter_above_16_bits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(
        capsys,
        "frame",
        "encode",
        "--downlink",
        "--confirmed",
        "--ack",
        "--devaddr",
        "260B1234",
        "--fcnt",
        "70000",
        "--fopts",
        "02",
        "--fport",
        "7",
        "--payload",
        "0102",
        *CLI_KEYS,
        "--json",
    )
    assert code == 0
    built = json.loads(out)
    assert (built["mtype"], built["fcnt16"], built["size"]) == ("CONFIRMED_DOWN", 70000 - 65536, 16)
    phy = built["phy"]

    for counter in (["--last-fcnt", "69990"], ["--fcnt-msb", "1"]):
        code, out, _ = _cli(capsys, "frame", "decode", phy, *CLI_KEYS, *counter, "--json")
        assert code == 0
        report = json.loads(out)
        assert (report["fcnt"], report["frm_payload"], report["fopts"]) == (70000, "0102", "02")
        assert report["ack"] is True

    code, out, err = _cli(capsys, "frame", "decode", phy, *CLI_KEYS)
    assert code == 1
    assert out == ""
    assert "MIC mismatch" in err


def test_rejects_bad_key_without_echoing_it(capsys: pytest.CaptureFixture[str]) -> None:
    typo = README_NWK[:-1] + "X"
    with pytest.raises(SystemExit) as info:
        main(["frame", "decode", README_PHY, "--nwkskey", typo, "--appskey", README_APP])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "--nwkskey: must be 32 hex digits" in err
    assert typo[:16].lower() not in (out + err).lower()
    _assert_no_keys(out, err)


def test_counter_options_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frame", "decode", README_PHY, *CLI_KEYS, "--fcnt-msb", "1", "--last-fcnt", "2"])
    assert info.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fport", "1", "--fopts", "00" * 16], "fopts: needs 16 bytes"),
        (["--payload", "01"], "fport: a non-empty FRMPayload needs an FPort"),
        (["--fport", "0", "--fopts", "02"], "fport: FPort 0"),
    ],
)
def test_encode_errors(capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    argv = ["frame", "encode", "--devaddr", "01020304", "--fcnt", "1", *extra, *CLI_KEYS]
    code, out, err = _cli(capsys, *argv)
    assert code == 1
    assert out == ""
    assert message in err


def test_decode_reports_malformed_frame(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "frame", "decode", "00" * 23, *CLI_KEYS)
    assert code == 1
    assert "unsupported MType 0 (join-request)" in err


# --- keys from the environment ------------------------------------------------------------

ENCODE_README = [
    *("frame", "encode", "--devaddr", "49BE7DF1", "--fcnt", "2", "--fport", "1"),
    *("--payload", b"test".hex()),
]


def test_keys_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NWK_ENV, README_NWK)
    monkeypatch.setenv(APP_ENV, README_APP.lower())

    code, out, _ = _cli(capsys, "frame", "decode", README_PHY, "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["mic_ok"], report["frm_payload"]) == (True, b"test".hex())

    code, out, _ = _cli(capsys, *ENCODE_README)
    assert code == 0
    assert out.strip() == README_PHY.lower()


def test_one_key_from_flag_the_other_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(APP_ENV, README_APP)
    code, out, _ = _cli(capsys, *ENCODE_README, "--nwkskey", README_NWK)
    assert code == 0
    assert out.strip() == README_PHY.lower()


@pytest.mark.parametrize(
    ("nwk_env", "app_env"),
    [
        (OTHER_NWK, OTHER_APP),
        # The flag wins without the variable being read, so even a broken one is no error.
        ("not a key", ""),
    ],
)
def test_flags_override_environment(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    nwk_env: str,
    app_env: str,
) -> None:
    monkeypatch.setenv(NWK_ENV, nwk_env)
    monkeypatch.setenv(APP_ENV, app_env)

    code, out, _ = _cli(capsys, "frame", "decode", README_PHY, *CLI_KEYS, "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["mic_ok"], report["frm_payload"]) == (True, b"test".hex())

    code, out, _ = _cli(capsys, *ENCODE_README, *CLI_KEYS)
    assert code == 0
    assert out.strip() == README_PHY.lower()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            ["--appskey", README_APP],
            "the network session key is missing: set LORA_EMOTION_NWKSKEY or give --nwkskey HEX",
        ),
        (
            ["--nwkskey", README_NWK],
            "the application session key is missing: set LORA_EMOTION_APPSKEY or give "
            "--appskey HEX",
        ),
    ],
)
@pytest.mark.parametrize("command", [["decode", README_PHY], ENCODE_README[1:]])
def test_missing_key_names_flag_and_variable(
    capsys: pytest.CaptureFixture[str], command: list[str], given: list[str], message: str
) -> None:
    out, err = _usage_error(capsys, "frame", *command, *given)
    assert out == ""
    assert err.splitlines()[-1] == f"lora-emotion frame {command[0]}: error: {message}"


def test_empty_variable_is_a_missing_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `export LORA_EMOTION_NWKSKEY=$UNSET` is a missing key, not a malformed one.
    monkeypatch.setenv(NWK_ENV, "")
    _, err = _usage_error(capsys, "frame", "decode", README_PHY)
    assert "missing: set LORA_EMOTION_NWKSKEY or give --nwkskey HEX" in err


@pytest.mark.parametrize("env", [NWK_ENV, APP_ENV])
@pytest.mark.parametrize(
    "value",
    [
        README_NWK[:-1] + "X",  # a typo in a real key
        README_NWK[:-2],  # a byte short
        README_NWK + "0F",  # a byte too many
        "password1234567890abcdefghijklmn",
    ],
)
@pytest.mark.parametrize("command", [["decode", README_PHY], ENCODE_README[1:]])
def test_malformed_environment_key_is_rejected_without_echoing_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    env: str,
    value: str,
) -> None:
    monkeypatch.setenv(NWK_ENV, README_NWK)
    monkeypatch.setenv(APP_ENV, README_APP)
    monkeypatch.setenv(env, value)
    out, err = _usage_error(capsys, "frame", *command)
    assert out == ""
    assert err.splitlines()[-1] == (
        f"lora-emotion frame {command[0]}: error: environment variable {env}: "
        "must be 32 hex digits (a 16-byte AES-128 key)"
    )
    for fragment in (value, value[:16], value[-16:]):
        assert fragment.lower() not in (out + err).lower()


@pytest.mark.parametrize("command", [[], ["decode"], ["encode"]])
def test_help_recommends_the_environment(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frame", *command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "export LORA_EMOTION_NWKSKEY=" in out
    assert "export LORA_EMOTION_APPSKEY=" in out
    assert "--nwkskey ..." not in out
