"""Tests for lora_emotion.budget and the ``lora-emotion budget`` command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lora_emotion.airtime import data_rate, time_on_air_us
from lora_emotion.budget import (
    DAILY_WINDOW_S,
    DEFAULT_LEDGER_CAPACITY,
    DUTY_CYCLE,
    DUTY_CYCLE_WINDOW_S,
    FAIR_USE_DAILY_MS,
    AirtimeLedger,
    Constraint,
    airtime_charge_ms,
    duty_cycle_budget_ms,
    plan,
)
from lora_emotion.cli import main
from lora_emotion.errors import EncodeError, PayloadTooLargeError

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def test_constants() -> None:
    assert DUTY_CYCLE == 0.01
    assert DUTY_CYCLE_WINDOW_S == 3600
    assert DAILY_WINDOW_S == 86_400
    assert FAIR_USE_DAILY_MS == 30_000
    assert DEFAULT_LEDGER_CAPACITY > 0


def test_airtime_charge_rounds_up_to_whole_ms() -> None:
    assert airtime_charge_ms(2, sf=12) == 1156  # 1155.072 ms
    assert airtime_charge_ms(0, sf=7) == 47  # 46.336 ms
    assert airtime_charge_ms(45, sf=12) == 2630  # 2629.632 ms
    for size in range(0, 52):
        micros = time_on_air_us(size, sf=10)
        assert 0 <= airtime_charge_ms(size, sf=10) * 1000 - micros < 1000


def test_duty_cycle_budget() -> None:
    assert duty_cycle_budget_ms(0.01) == 36_000
    assert duty_cycle_budget_ms(0.001) == 3_600
    assert duty_cycle_budget_ms(0.1) == 360_000
    assert duty_cycle_budget_ms(1) == 3_600_000
    assert duty_cycle_budget_ms(0.01, window_s=60) == 600
    for bad in (0, -0.01, 1.5, float("nan"), True):
        with pytest.raises(EncodeError) as info:
            duty_cycle_budget_ms(bad)
        assert info.value.field == "duty_cycle"


# --- plan -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "per_day"), [(0, 25), (1, 25), (2, 25), (4, 22), (12, 20), (45, 11)]
)
def test_reference_uplinks_per_day_at_sf12(size: int, per_day: int) -> None:
    result = plan([size], sf=12)
    assert result.uplinks_per_day == per_day
    assert result.binding is Constraint.DAILY_CAP
    assert result.max_per_day_cap == per_day
    assert result.data_rate == 0


def test_plan_reports_everything_for_one_size() -> None:
    result = plan([2], sf=12)
    (kind,) = result.kinds
    assert (kind.name, kind.payload_size, kind.weight) == ("2B", 2, 1.0)
    assert kind.airtime_ms == pytest.approx(1155.072)
    assert kind.charge_ms == 1156
    assert kind.per_day == 25
    assert result.mean_airtime_ms == 1156
    assert result.max_per_hour == 31  # 36 000 // 1156
    assert result.max_per_day_duty_cycle == 31 * 24
    assert result.min_interval_s == pytest.approx(86_400 / 25)
    assert result.airtime_per_day_ms == 25 * 1156
    assert result.duty_cycle_budget_ms == 36_000
    assert result.kind("2B") is kind
    with pytest.raises(KeyError):
        result.kind("status")


def test_plan_mix_with_weights() -> None:
    result = plan({"reading": (2, 10), "status": (15, 1)}, sf=12)
    reading, status = result.kinds
    assert (reading.charge_ms, status.charge_ms) == (1156, 1647)
    mean = (10 * 1156 + 1647) / 11
    assert result.mean_airtime_ms == pytest.approx(mean)
    assert result.max_per_hour == int(36_000 // mean)
    assert result.uplinks_per_day == int(30_000 // mean) == 24
    assert reading.per_day == pytest.approx(24 * 10 / 11)
    assert status.per_day == pytest.approx(24 / 11)
    assert reading.per_day + status.per_day == pytest.approx(result.uplinks_per_day)
    assert result.airtime_per_day_ms == pytest.approx(24 * mean)
    assert result.airtime_per_day_ms <= 30_000


def test_plan_sequence_repeats_add_weight() -> None:
    result = plan([2, 2, 15], sf=12)
    assert [(k.name, k.payload_size, k.weight) for k in result.kinds] == [
        ("2B", 2, 2.0),
        ("15B", 15, 1.0),
    ]
    same = plan({"a": (2, 2), "b": (15, 1)}, sf=12)
    assert same.uplinks_per_day == result.uplinks_per_day
    assert same.mean_airtime_ms == result.mean_airtime_ms


def test_plan_bare_size_in_mapping_has_weight_one() -> None:
    assert plan({"r": 2}, sf=12).kind("r").weight == 1.0


def test_duty_cycle_binds_without_daily_cap() -> None:
    result = plan([2], sf=7, daily_cap_ms=None)
    assert result.binding is Constraint.DUTY_CYCLE
    assert result.max_per_day_cap is None
    assert result.max_per_hour == 36_000 // 47 == 765
    assert result.uplinks_per_day == 765 * 24
    assert result.min_interval_s == pytest.approx(3600 / 765)


def test_duty_cycle_binds_when_cap_is_generous() -> None:
    result = plan([45], sf=12, daily_cap_ms=10_000_000)
    assert result.binding is Constraint.DUTY_CYCLE
    assert result.uplinks_per_day == 13 * 24


def test_stricter_duty_cycle() -> None:
    result = plan([2], sf=12, duty_cycle=0.001, daily_cap_ms=None)
    assert result.duty_cycle_budget_ms == 3600
    assert result.max_per_hour == 3


def test_nothing_fits() -> None:
    result = plan([51], sf=12, duty_cycle=0.0001)  # 360 ms per hour
    assert result.max_per_hour == 0
    assert result.uplinks_per_day == 0
    assert result.min_interval_s is None
    assert result.binding is Constraint.DUTY_CYCLE


def test_plan_with_data_rate() -> None:
    at_dr6 = plan([2], sf=data_rate(6))
    assert (at_dr6.sf, at_dr6.bandwidth_khz, at_dr6.data_rate) == (7, 250, 6)
    assert at_dr6.kinds[0].charge_ms == airtime_charge_ms(2, sf=7, bandwidth_khz=250)
    assert plan([2], sf=data_rate(0)) == plan([2], sf=12)
    with pytest.raises(EncodeError) as info:
        plan([2], sf=data_rate(6), bandwidth_khz=125)
    assert info.value.field == "bandwidth_khz"


def test_plan_payload_limits() -> None:
    assert plan([51], sf=12).uplinks_per_day > 0
    with pytest.raises(PayloadTooLargeError) as info:
        plan({"big": (52, 1)}, sf=12)
    assert (info.value.field, info.value.size, info.value.limit) == ("mix[big]", 52, 51)
    # FOpts eat into the regional limit.
    with pytest.raises(PayloadTooLargeError):
        plan([50], sf=12, header_overhead=15)
    assert plan([115], sf=9).uplinks_per_day > 0
    with pytest.raises(PayloadTooLargeError):
        plan([30], sf=12, max_payload=20)
    # No EU868 data rate: only the 255-byte PHY limit applies.
    assert plan([242], sf=12, bandwidth_khz=250).data_rate is None
    with pytest.raises(PayloadTooLargeError):
        plan([243], sf=12, bandwidth_khz=250)


@pytest.mark.parametrize(
    ("mix", "field"),
    [
        ([], "mix"),
        ({}, "mix"),
        ("12", "mix"),
        ([2.0], "mix"),
        ({"": (2, 1)}, "mix"),
        ({"r": (2, 0)}, "mix[r]"),
        ({"r": (2, -1)}, "mix[r]"),
        ({"r": (2, float("inf"))}, "mix[r]"),
        ({"r": (2, True)}, "mix[r]"),
        ({"r": (2,)}, "mix[r]"),
        ({"r": ("2", 1)}, "mix[r]"),
        ({"r": (-1, 1)}, "mix[r]"),
    ],
)
def test_plan_rejects_bad_mix(mix: Any, field: str) -> None:
    with pytest.raises(EncodeError) as info:
        plan(mix, sf=12)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sf": 13}, "sf"),
        ({"bandwidth_khz": 200}, "bandwidth_khz"),
        ({"duty_cycle": 0}, "duty_cycle"),
        ({"daily_cap_ms": 0}, "daily_cap_ms"),
        ({"daily_cap_ms": 1.5}, "daily_cap_ms"),
    ],
)
def test_plan_rejects_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(EncodeError) as info:
        plan([2], **kwargs)
    assert info.value.field == field


def test_plan_is_frozen_and_serialisable() -> None:
    result = plan({"reading": (2, 10), "status": (15, 1)}, sf=12)
    with pytest.raises(AttributeError):
        result.uplinks_per_day = 1  # type: ignore[misc]
    document = json.loads(json.dumps(result.to_dict()))
    assert document["binding"] == "daily_cap"
    assert document["uplinks_per_day"] == 24
    assert [k["name"] for k in document["kinds"]] == ["reading", "status"]


# --- ledger: unit behaviour -----------------------------------------------------------------


def test_ledger_duty_cycle_window_edges() -> None:
    ledger = AirtimeLedger(daily_cap_ms=None)
    assert ledger.can_send(0, 36_000)
    ledger.record(0, 30_000)
    assert ledger.used_hour_ms(0) == 30_000
    assert ledger.can_send(10, 6_000)
    assert not ledger.can_send(10, 6_001)
    # The transmission at 0 counts while now - 0 < 3 600 000.
    assert ledger.used_hour_ms(HOUR_MS - 1) == 30_000
    assert not ledger.can_send(HOUR_MS - 1, 6_001)
    assert ledger.used_hour_ms(HOUR_MS) == 0
    assert ledger.can_send(HOUR_MS, 36_000)


def test_ledger_daily_cap() -> None:
    edge = AirtimeLedger()
    edge.record(0, 29_000)
    assert edge.can_send(HOUR_MS, 1_000)
    assert not edge.can_send(HOUR_MS, 1_001)
    assert edge.next_allowed_ms(HOUR_MS, 1_001) == DAY_MS
    ledger = AirtimeLedger()
    now = 0
    sent = 0
    while ledger.try_record(now, 1156):
        sent += 1
        now += 1156
    assert sent == 25
    assert ledger.used_day_ms(now) == 25 * 1156
    assert ledger.used_hour_ms(now) == 25 * 1156
    # Hours later the duty cycle is clear but the daily cap is not.
    assert ledger.used_hour_ms(now + 2 * HOUR_MS) == 0
    assert not ledger.can_send(now + 2 * HOUR_MS, 1156)
    assert ledger.next_allowed_ms(now + 2 * HOUR_MS, 1156) == DAY_MS
    assert ledger.can_send(DAY_MS, 1156)
    # The first transmission has left the day window, the second has not.
    assert not ledger.can_send(DAY_MS, 2 * 1156)


def test_ledger_next_allowed_duty_cycle() -> None:
    ledger = AirtimeLedger(daily_cap_ms=None)
    for start in (0, 1000, 2000):
        ledger.record(start, 12_000)
    assert ledger.next_allowed_ms(2500, 1) == HOUR_MS
    assert ledger.next_allowed_ms(2500, 12_000) == HOUR_MS  # exact fit
    assert ledger.next_allowed_ms(2500, 24_000) == HOUR_MS + 1000  # exact fit
    assert ledger.next_allowed_ms(2500, 12_001) == HOUR_MS + 1000
    assert ledger.next_allowed_ms(2500, 36_000) == HOUR_MS + 2000
    assert ledger.next_allowed_ms(HOUR_MS + 5000, 36_000) == HOUR_MS + 5000


def test_ledger_ring_full_refuses() -> None:
    ledger = AirtimeLedger(capacity=3)
    for start in (0, 10, 20):
        ledger.record(start, 1)
    assert len(ledger) == 3
    assert ledger.used_day_ms(30) == 3  # far from any budget ...
    assert not ledger.can_send(30, 1)  # ... but no room to remember another
    with pytest.raises(EncodeError) as info:
        ledger.record(30, 1)
    assert info.value.field == "capacity"
    assert not ledger.try_record(30, 1)
    # With a daily cap the ring keeps a day of history.
    assert ledger.next_allowed_ms(30, 1) == DAY_MS
    assert not ledger.can_send(DAY_MS - 1, 1)
    assert ledger.can_send(DAY_MS, 1)
    assert ledger.transmissions == ((10, 1), (20, 1))


def test_ledger_without_daily_cap_keeps_one_hour() -> None:
    ledger = AirtimeLedger(capacity=2, daily_cap_ms=None)
    ledger.record(0, 1)
    ledger.record(1, 1)
    assert not ledger.can_send(2, 1)
    assert ledger.next_allowed_ms(2, 1) == HOUR_MS
    assert ledger.can_send(HOUR_MS, 1)
    assert len(ledger) == 1


def test_ledger_ring_wraps() -> None:
    ledger = AirtimeLedger(capacity=4, daily_cap_ms=None)
    now = 0
    for _ in range(50):
        assert ledger.try_record(now, 100)
        now += HOUR_MS // 3
    assert len(ledger) == 3
    starts = [start for start, _ in ledger.transmissions]
    assert starts == sorted(starts)
    assert now - HOUR_MS < starts[0] + HOUR_MS // 3


def test_ledger_rejects_bad_input() -> None:
    ledger = AirtimeLedger()
    ledger.record(1000, 10)
    for now, airtime, field in [
        (999, 10, "now_ms"),  # time went backwards
        (-1, 10, "now_ms"),
        (1.5, 10, "now_ms"),
        (2000, 0, "airtime_ms"),
        (2000, True, "airtime_ms"),
        (2000, 10.0, "airtime_ms"),
    ]:
        for method in (ledger.can_send, ledger.record, ledger.next_allowed_ms):
            with pytest.raises(EncodeError) as info:
                method(now, airtime)  # type: ignore[arg-type]
            assert info.value.field == field
    with pytest.raises(EncodeError) as info:
        ledger.next_allowed_ms(2000, 30_001)
    assert info.value.field == "airtime_ms"
    assert not ledger.can_send(2000, 30_001)
    settings_cases: list[tuple[dict[str, Any], str]] = [
        ({"capacity": 0}, "capacity"),
        ({"duty_cycle_budget_ms": -1}, "duty_cycle_budget_ms"),
        ({"daily_cap_ms": 0}, "daily_cap_ms"),
        ({"duty_cycle_window_ms": 1.0}, "duty_cycle_window_ms"),
    ]
    for kwargs, field in settings_cases:
        with pytest.raises(EncodeError) as info:
            AirtimeLedger(**kwargs)
        assert info.value.field == field


# --- ledger: property test against a brute-force checker ------------------------------------


@dataclass
class Rules:
    budget_ms: int
    window_ms: int
    cap_ms: int | None
    day_ms: int
    capacity: int

    def ledger(self) -> AirtimeLedger:
        return AirtimeLedger(
            duty_cycle_budget_ms=self.budget_ms,
            duty_cycle_window_ms=self.window_ms,
            daily_cap_ms=self.cap_ms,
            daily_window_ms=self.day_ms,
            capacity=self.capacity,
        )

    @property
    def retention_ms(self) -> int:
        return self.window_ms if self.cap_ms is None else max(self.window_ms, self.day_ms)


def window_sum(history: Sequence[tuple[int, int]], now: int, window: int) -> int:
    return sum(airtime for start, airtime in history if now - window < start <= now)


def oracle_can_send(rules: Rules, history: Sequence[tuple[int, int]], now: int, a: int) -> bool:
    """The rules stated from scratch over the whole history."""
    remembered = sum(1 for start, _ in history if now - start < rules.retention_ms)
    if remembered >= rules.capacity:
        return False
    if window_sum(history, now, rules.window_ms) + a > rules.budget_ms:
        return False
    return rules.cap_ms is None or window_sum(history, now, rules.day_ms) + a <= rules.cap_ms


def assert_never_over_budget(rules: Rules, history: Sequence[tuple[int, int]]) -> None:
    # A window's sum only grows when its right edge passes a start, so checking the windows
    # that end at each start covers every window.
    for end, _ in history:
        assert window_sum(history, end, rules.window_ms) <= rules.budget_ms
        if rules.cap_ms is not None:
            assert window_sum(history, end, rules.day_ms) <= rules.cap_ms


rules_strategy = st.builds(
    Rules,
    budget_ms=st.sampled_from([36_000, 5_000, 1_000]),
    window_ms=st.sampled_from([HOUR_MS, 60_000, 1_000]),
    cap_ms=st.one_of(st.none(), st.sampled_from([30_000, 8_000, 2_000])),
    day_ms=st.sampled_from([DAY_MS, 300_000, 5_000]),
    capacity=st.integers(1, 40),
)
gap_strategy = st.one_of(
    st.integers(0, 50), st.integers(0, 5_000), st.integers(0, 400_000), st.integers(0, DAY_MS)
)
# Round airtimes make exact fits (used + new == budget) common: the edge of every rule.
airtime_strategy = st.one_of(
    st.sampled_from([1, 2, 500, 1_000, 2_000, 6_000, 12_000]),
    st.integers(1, 400),
    st.integers(1, 12_000),
)
step_strategy = st.tuples(gap_strategy, airtime_strategy, st.booleans())


@settings(max_examples=600, deadline=None)
@given(rules=rules_strategy, steps=st.lists(step_strategy, min_size=5, max_size=120))
def test_ledger_never_exceeds_any_window(rules: Rules, steps: list[tuple[int, int, bool]]) -> None:
    ledger = rules.ledger()
    history: list[tuple[int, int]] = []
    now = 0
    for gap, airtime, wait in steps:
        now += gap
        allowed = ledger.can_send(now, airtime)
        assert allowed == oracle_can_send(rules, history, now, airtime)
        if not allowed:
            event("refused")
            if len(ledger) == rules.capacity:
                event("refused with a full ring")
        if not allowed and wait:
            limit_hit = airtime > rules.budget_ms or (
                rules.cap_ms is not None and airtime > rules.cap_ms
            )
            if limit_hit:
                with pytest.raises(EncodeError):
                    ledger.next_allowed_ms(now, airtime)
                continue
            ready = ledger.next_allowed_ms(now, airtime)
            assert ready > now
            # The earliest time, not merely a safe one.
            assert not ledger.can_send(ready - 1, airtime)
            assert not oracle_can_send(rules, history, ready - 1, airtime)
            now = ready
            allowed = ledger.can_send(now, airtime)
            assert allowed
        elif allowed:
            assert ledger.next_allowed_ms(now, airtime) == now
        if allowed:
            ledger.record(now, airtime)
            history.append((now, airtime))
        assert ledger.used_hour_ms(now) == window_sum(history, now, rules.window_ms)
        if rules.cap_ms is not None:
            assert ledger.used_day_ms(now) == window_sum(history, now, rules.day_ms)
        assert len(ledger) <= rules.capacity
    assert_never_over_budget(rules, history)


# --- ledger and plan agree ------------------------------------------------------------------


def send_greedily(ledger: AirtimeLedger, charge: int, until_ms: int) -> list[int]:
    """Send back to back whenever the ledger allows; return the start times."""
    starts: list[int] = []
    now = 0
    while True:
        now = ledger.next_allowed_ms(now, charge)
        if now >= until_ms:
            return starts
        ledger.record(now, charge)
        starts.append(now)
        now += charge  # a radio sends one frame at a time


@pytest.mark.parametrize(("size", "daily_cap_ms"), [(2, 30_000), (4, 30_000), (45, 30_000)])
def test_plan_matches_greedy_ledger_daily(size: int, daily_cap_ms: int) -> None:
    expected = plan([size], sf=12, daily_cap_ms=daily_cap_ms)
    ledger = AirtimeLedger(daily_cap_ms=daily_cap_ms)
    starts = send_greedily(ledger, airtime_charge_ms(size, sf=12), 3 * DAY_MS)
    for end in (DAY_MS - 1, 2 * DAY_MS - 1, 3 * DAY_MS - 1):
        in_day = [s for s in starts if end - DAY_MS < s <= end]
        assert len(in_day) == expected.uplinks_per_day


def test_plan_matches_greedy_ledger_duty_cycle() -> None:
    expected = plan([45], sf=12, daily_cap_ms=None)
    ledger = AirtimeLedger(daily_cap_ms=None)
    starts = send_greedily(ledger, airtime_charge_ms(45, sf=12), DAY_MS)
    assert len(starts) == expected.uplinks_per_day == 24 * expected.max_per_hour


@pytest.mark.parametrize(
    ("mix", "sf", "cap"),
    [([2], 12, 30_000), ([45], 12, 30_000), ([51], 10, None), ([4], 9, 30_000)],
)
def test_even_spacing_at_min_interval_is_never_refused(
    mix: list[int], sf: int, cap: int | None
) -> None:
    expected = plan(mix, sf=sf, daily_cap_ms=cap)
    assert expected.min_interval_s is not None
    interval_ms = -(-round(expected.min_interval_s * 1_000_000) // 1000)  # ceil, in ms
    charge = expected.kinds[0].charge_ms
    ledger = AirtimeLedger(daily_cap_ms=cap, capacity=1000)
    sent = 0
    for i in range(0, 2 * expected.uplinks_per_day):
        assert ledger.try_record(i * interval_ms, charge), i
        sent += 1
    assert sent == 2 * expected.uplinks_per_day


# --- command line ---------------------------------------------------------------------------


def test_cli_plan_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budget", "--mix", "reading=2:10,status=15:1"]) == 0
    out = capsys.readouterr().out
    assert "SF12/125 kHz (DR0)" in out
    assert "binding constraint: daily cap" in out
    assert "24 uplinks/day" in out
    assert "reading" in out and "status" in out


def test_cli_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budget", "--mix", "45", "--dr", "0", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["uplinks_per_day"] == 11
    assert document["binding"] == "daily_cap"
    assert document["kinds"][0]["name"] == "45B"


def test_cli_plan_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budget", "--mix", "2", "--sf", "7", "--daily-cap", "none", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["binding"] == "duty_cycle"
    assert document["daily_cap_ms"] is None
    assert document["uplinks_per_day"] == 765 * 24
    argv = ["budget", "--mix", "a=2,b=4:3", "--daily-cap", "60", "--duty-cycle", "0.001"]
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["daily_cap_ms"] == 60_000
    assert document["duty_cycle_budget_ms"] == 3_600
    assert [(k["name"], k["payload_size"], k["weight"]) for k in document["kinds"]] == [
        ("a", 2, 1.0),
        ("b", 4, 3.0),
    ]
    assert main(["budget", "--mix", "40", "--dr", "2", "--fopts", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kinds"][0]["charge_ms"] == airtime_charge_ms(
        40, sf=10, header_overhead=18
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mix", "x=a"], "--mix"),
        (["--mix", "a=2,a=3"], "--mix"),
        (["--mix", "2:zero"], "--mix"),
        (["--mix", "52"], "mix[52B]"),
        (["--mix", "2", "--daily-cap", "soon"], "--daily-cap"),
        (["--mix", "2", "--daily-cap", "-1"], "--daily-cap"),
        (["--mix", "2", "--duty-cycle", "2"], "duty_cycle"),
        (["--mix", "2", "--sf", "6"], "sf"),
        (["--mix", "2", "--dr", "9"], "dr"),
        (["--mix", "2", "--fopts", "16"], "--fopts"),
    ],
)
def test_cli_errors_go_to_stderr(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["budget", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lora-emotion budget: error:")
    assert message in captured.err


def test_cli_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["budget", "--help"])
    assert info.value.code == 0
    assert "--mix reading=2:10,status=15:1" in capsys.readouterr().out
