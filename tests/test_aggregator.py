"""The relay's rules in Python (the twin of LoraEmotionRelay.cpp)."""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_emotion.aggregator import (
    DEFAULT_LEDGER_CAPACITY,
    PACER_BURST_S,
    Aggregator,
    DeviceLedger,
    RelayConfig,
    Uplink,
    pacer_cost,
)
from lora_emotion.budget import AirtimeLedger, airtime_charge_ms
from lora_emotion.errors import EncodeError
from lora_emotion.labels import FER2013, PHYSIO3, LabelSet
from lora_emotion.messages import (
    CommandStatus,
    Distribution,
    Mode,
    Reading,
    Status,
    Summary,
    Vitals,
    decode,
)
from lora_emotion.relay_protocol import (
    DistributionFrame,
    FaceEntry,
    FacesFrame,
    Frame,
    LegacyByte,
    Prediction,
    ReadingFrame,
    VitalsFrame,
    encode_frame,
)
from lora_emotion.simulator import EmotionStream, Observation, StreamConfig, observation_frames

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "arduino" / "LoraEmotion" / "src"
#: No budget and no join: every rule but Rule 5 and Rule 6, decisions once per second.
FREE = {"budget": False, "status_interval_min": 0}


def run(relay: Aggregator, steps: list[tuple[int, list[object]]]) -> list[Uplink]:
    """Frames at times, each step followed by one decision, as loop() does."""
    uplinks: list[Uplink] = []
    for t_ms, frames in steps:
        for frame in frames:
            relay.handle_frame(t_ms, frame)  # type: ignore[arg-type]
        uplinks += relay.poll(t_ms)
    return uplinks


def reading(label: int | None, confidence: int | None = None) -> ReadingFrame:
    return ReadingFrame(label_set=0, label=label, confidence_pct=confidence)


def windows(uplinks: list[Uplink]) -> list[Uplink]:
    return [u for u in uplinks if u.kind == "window"]


@functools.cache
def observations(label_set: LabelSet, seconds: int, seed: int) -> tuple[Observation, ...]:
    # Streams are the costly part of these tests; several tests replay the same day.
    stream = EmotionStream(StreamConfig(label_set=label_set), seed=seed)
    return tuple(stream.next() for _ in range(seconds))


def feed_stream(relay: Aggregator, seconds: int, *, seed: int = 1) -> list[Uplink]:
    """A simulated host at 1 Hz, exactly as fleet.VirtualDevice feeds the relay."""
    uplinks: list[Uplink] = []
    label_set = relay.config.label_set
    for observation in observations(label_set, seconds, seed):
        for frame in observation_frames(observation, label_set):
            relay.handle_frame(observation.t_ms, frame)
        uplinks += relay.poll(observation.t_ms)
    return uplinks


# -- windows and what they become -----------------------------------------------------------


def test_a_summary_covers_its_window_with_integer_mean_confidence() -> None:
    relay = Aggregator(RelayConfig(mode=Mode.SUMMARY, window_s=10, **FREE))
    steps = [(0, [])] + [(t * 1000, [reading(3, 80 if t % 2 else 61)]) for t in range(1, 10)]
    # Input is taken before each decision: the reading at 10 s is in the window sent at 10 s.
    steps += [(10_000, [reading(None)])]
    uplinks = run(relay, steps)
    assert [u.kind for u in uplinks] == ["status", "change", "window"]
    summary = uplinks[2].message
    assert isinstance(summary, Summary)
    # Nine readings of happy: five at 80 %, four at 61 %; the mean rounds half up: 71.56 -> 72.
    assert summary.counts == (0, 0, 0, 9, 0, 0, 0) and summary.no_face == 1
    assert summary.mean_confidence == 0.72 and summary.window_s == 10
    assert uplinks[2].readings == 10 and uplinks[2].t_ms == 10_000


def test_input_of_the_deciding_second_joins_the_window_being_sent() -> None:
    relay = Aggregator(RelayConfig(mode=Mode.SUMMARY, window_s=10, **FREE))
    run(relay, [(0, [])])
    uplinks = run(relay, [(t * 1000, [reading(3, 50)]) for t in range(1, 11)])
    (window,) = windows(uplinks)
    assert isinstance(window.message, Summary) and sum(window.message.counts) == 10
    assert relay.pending_readings == 0


def test_an_empty_window_sends_nothing_and_restarts() -> None:
    relay = Aggregator(RelayConfig(mode=Mode.READING, window_s=5, **FREE))
    uplinks = run(relay, [(t * 1000, []) for t in range(0, 30)])
    assert [u.kind for u in uplinks] == ["status"]
    uplinks = run(relay, [(31_000, [reading(1, 90)])] + [(t * 1000, []) for t in range(32, 40)])
    (window,) = windows(uplinks)
    # Empty, the window restarted at 5, 10, ... 25 s; at 31 s it is 6 s old and holds a reading.
    assert window.t_ms == 31_000 and window.readings == 1


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        (
            [reading(3, 90), reading(3, 70), reading(4, 99)],
            Reading(label_set=FER2013, label="happy", confidence=0.8),
        ),
        (
            [reading(4, 40), reading(3, 60)],
            Reading(label_set=FER2013, label="happy", confidence=0.6),
        ),
        # "No face" is dominant only when no class was counted at all.
        (
            [reading(None), reading(None), reading(2, 50)],
            Reading(label_set=FER2013, label="fear", confidence=0.5),
        ),
        ([reading(None), reading(None)], Reading(label_set=FER2013, label=None)),
        # The 2021 one-byte contract carries no confidence: the mean is 0.
        ([LegacyByte(value=0)], Reading(label_set=FER2013, label="angry", confidence=0.0)),
    ],
)
def test_reading_mode_sends_the_dominant_reading(frames: list[object], expected: Reading) -> None:
    relay = Aggregator(RelayConfig(mode=Mode.READING, window_s=60, **FREE))
    run(relay, [(0, [])])
    uplinks = run(relay, [(1000, frames)] + [(t * 1000, []) for t in range(2, 62)])
    (window,) = windows(uplinks)
    assert window.message == expected


def test_distribution_mode_sums_whole_percent_shares() -> None:
    relay = Aggregator(RelayConfig(label_set=PHYSIO3, mode=Mode.DISTRIBUTION, **FREE))
    run(relay, [(0, [])])
    frames = [
        DistributionFrame(label_set=2, weights=(7000, 2000, 1000)),
        DistributionFrame(label_set=2, weights=(1, 6, 3)),
        ReadingFrame(label_set=2, label=2, confidence_pct=90),  # a bare reading is 100 % its class
        ReadingFrame(label_set=2, label=None),  # no face takes no part
    ]
    uplinks = run(relay, [(1000, frames)] + [(t * 1000, []) for t in range(2, 62)])
    (window,) = windows(uplinks)
    message = window.message
    assert isinstance(message, Distribution)
    # Shares 70+10+0, 20+60+0, 10+30+100 of 300 -> 26.7, 26.7, 46.7 -> 27, 27, 46 (ties low).
    assert message.probabilities == (0.27, 0.27, 0.46)
    assert window.readings == 4


def test_vitals_mode_sends_rounded_means_with_the_dominant_reading() -> None:
    relay = Aggregator(RelayConfig(label_set=PHYSIO3, mode=Mode.VITALS, **FREE))
    run(relay, [(0, [])])
    frames = [
        VitalsFrame(label_set=2, heart_rate_bpm=70, skin_conductance_centi_us=300),
        VitalsFrame(label_set=2, heart_rate_bpm=75),
        VitalsFrame(
            label_set=2,
            skin_conductance_centi_us=401,
            prediction=Prediction(label=1, confidence_pct=55),
        ),
    ]
    uplinks = run(relay, [(1000, frames)] + [(t * 1000, []) for t in range(2, 62)])
    (window,) = windows(uplinks)
    assert window.message == Vitals(
        label_set=PHYSIO3,
        heart_rate_bpm=73,  # 72.5 rounds half up
        skin_conductance_us=3.51,  # 350.5 centi-µS rounds half up
        reading=Reading(label_set=PHYSIO3, label="happy", confidence=0.55),
    )


def test_vitals_mode_without_readings_sends_vitals_alone_and_without_vitals_a_reading() -> None:
    relay = Aggregator(RelayConfig(label_set=PHYSIO3, mode=Mode.VITALS, window_s=5, **FREE))
    run(relay, [(0, [])])
    only_vitals = run(
        relay,
        [(1000, [VitalsFrame(label_set=2, heart_rate_bpm=90)])]
        + [(t * 1000, []) for t in range(2, 7)],
    )
    assert windows(only_vitals)[0].message == Vitals(label_set=PHYSIO3, heart_rate_bpm=90)
    only_reading = run(
        relay,
        [(7000, [ReadingFrame(label_set=2, label=0, confidence_pct=20)])]
        + [(t * 1000, []) for t in range(8, 13)],
    )
    assert windows(only_reading)[0].message == Reading(
        label_set=PHYSIO3, label="angry", confidence=0.2
    )


def test_faces_count_one_reading_each_and_none_as_no_face() -> None:
    relay = Aggregator(RelayConfig(mode=Mode.SUMMARY, window_s=5, **FREE))
    run(relay, [(0, [])])
    frames = [
        FacesFrame(label_set=0, faces=(FaceEntry(label=3, confidence_pct=90), FaceEntry(label=4))),
        FacesFrame(label_set=0, faces=()),
    ]
    uplinks = run(relay, [(1000, frames)] + [(t * 1000, []) for t in range(2, 7)])
    summary = windows(uplinks)[0].message
    assert isinstance(summary, Summary)
    assert summary.counts == (0, 0, 0, 1, 1, 0, 0) and summary.no_face == 1


def test_bad_input_is_counted_not_aggregated() -> None:
    relay = Aggregator(RelayConfig(**FREE))
    relay.handle_frame(0, ReadingFrame(label_set=1, label=2, confidence_pct=50))  # another set
    relay.handle_frame(0, FacesFrame(label_set=1, faces=(FaceEntry(label=1), FaceEntry(label=2))))
    relay.handle_frame(0, ReadingFrame(label_set=0, label=9))  # class 9 of a 7-class set
    relay.handle_frame(0, LegacyByte(value=8))  # above "no face" (7)
    relay.handle_frame(0, DistributionFrame(label_set=0, weights=(1, 2, 3)))  # 3 of 7 classes
    relay.handle_frame(0, LegacyByte(value=7))  # no face: fine
    assert relay.dropped == 3 and relay.invalid == 3 and relay.received == 1
    assert relay.status().dropped == 6  # the status reports dropped + invalid


# -- changes and priorities -----------------------------------------------------------------


def test_three_in_a_row_of_a_new_class_is_sent_at_once_as_a_change() -> None:
    relay = Aggregator(RelayConfig(mode=Mode.SUMMARY, window_s=4, **FREE))
    steps = [(0, [])] + [(t * 1000, [reading(4 if t <= 3 else 3, 70 + t)]) for t in range(1, 7)]
    uplinks = run(relay, steps)
    # Each change carries the rounded mean confidence of its streak: 71, 72, 73 and 74, 75, 76.
    # The second is the first change of the window that started when the first window went.
    assert [(u.t_ms, u.kind, u.message) for u in uplinks if u.kind != "status"] == [
        (3000, "change", Reading(label_set=FER2013, label="sad", confidence=0.72)),
        (4000, "window", uplinks[2].message),
        (6000, "change", Reading(label_set=FER2013, label="happy", confidence=0.75)),
    ]
    # The reported class again is no change; no face never is.
    more = run(relay, [(t * 1000, [reading(3, 50)]) for t in range(7, 12)])
    more += run(relay, [(t * 1000, [reading(None)]) for t in range(12, 20)])
    assert [u for u in more if u.kind == "change"] == []


def test_a_second_change_in_a_window_waits_for_the_window_which_reports_it() -> None:
    relay = Aggregator(RelayConfig(mode=Mode.SUMMARY, window_s=10, **FREE))
    labels = [4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2]
    uplinks = run(
        relay, [(0, [])] + [(t * 1000, [reading(labels[t - 1], 60)]) for t in range(1, 16)]
    )
    kinds = [(u.t_ms, u.kind) for u in uplinks if u.kind != "status"]
    # sad goes at once; happy (due at 6 s) waits for the window at 10 s, whose dominant class
    # it is, so it is never sent; fear (due at 14 s) is the first change of the next window.
    assert kinds == [(3000, "change"), (10_000, "window"), (14_000, "change")]
    assert isinstance(uplinks[2].message, Summary) and uplinks[2].message.counts[3] == 7
    assert uplinks[3].message == Reading(label_set=FER2013, label="fear", confidence=0.6)


def test_a_change_the_window_does_not_report_goes_first_in_the_next_window() -> None:
    relay = Aggregator(RelayConfig(mode=Mode.SUMMARY, window_s=10, **FREE))
    # sad x3 (sent), then happy x3 (waits), then sad dominates the window at 10 s.
    labels = [4, 4, 4, 3, 3, 3, 4, 4, 4, 4, 4]
    uplinks = run(
        relay, [(0, [])] + [(t * 1000, [reading(labels[t - 1], 50)]) for t in range(1, 12)]
    )
    kinds = [(u.t_ms, u.kind) for u in uplinks if u.kind != "status"]
    assert kinds == [(3000, "change"), (10_000, "window"), (11_000, "change")]
    assert uplinks[-1].message == Reading(label_set=FER2013, label="happy", confidence=0.5)


def test_status_comes_first_then_change_then_window() -> None:
    relay = Aggregator(
        RelayConfig(mode=Mode.SUMMARY, window_s=2, status_interval_min=0, budget=False)
    )
    uplinks = run(
        relay, [(0, [reading(3, 80)]), (1000, [reading(3, 80)]), (2000, [reading(3, 80)])]
    )
    uplinks += run(relay, [(3000, []), (4000, [])])
    assert [u.kind for u in uplinks] == ["status", "change", "window"]


def test_status_every_interval_reports_the_relay() -> None:
    relay = Aggregator(RelayConfig(status_interval_min=10, budget=False))
    uplinks = run(relay, [(t * 1000, []) for t in range(0, 1300)])
    statuses = [u for u in uplinks if u.kind == "status"]
    assert [u.t_ms for u in statuses] == [0, 600_000, 1_200_000]
    status = statuses[-1].message
    assert isinstance(status, Status)
    assert status.uptime_s == 1200 and status.label_set_fingerprint == FER2013.fingerprint


# -- the budget -----------------------------------------------------------------------------


def test_the_first_decision_is_a_join_charged_at_sf12() -> None:
    relay = Aggregator(RelayConfig())
    assert relay.poll(0) == []
    assert relay.join_airtime_ms == 1483 and relay.ledger.used_hour_ms(0) == 1483
    # The join request is a transmission: the status waits for its off-time (100 x 1483 ms).
    assert relay.poll(148_000) == []  # 300 ms short
    (status,) = relay.poll(149_000)
    assert status.kind == "status" and status.fport == 2


def test_pacer_cost_is_the_share_of_the_daily_cap_in_seconds() -> None:
    # A DR5 reading (46 ms) is 132.48 s of a 30-s day; rounded up.
    assert pacer_cost(46, daily_budget_s=30) == 133
    # A DR0 reading (1156 ms) is 3329.28 s of a 30-s day, 97.5 s of a 1024-s day.
    assert pacer_cost(1156, daily_budget_s=30) == 3330
    assert pacer_cost(1156, daily_budget_s=1024) == 98


def _max_in_windows(uplinks: list[tuple[int, int]], window_ms: int) -> int:
    worst = 0
    for start, _ in uplinks:
        worst = max(worst, sum(a for t, a in uplinks if start <= t < start + window_ms))
    return worst


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("data_rate", [5, 0])
def test_a_day_keeps_to_the_duty_cycle_daily_cap_off_time_and_pacer(
    mode: Mode, data_rate: int
) -> None:
    relay = Aggregator(RelayConfig(mode=mode, data_rate=data_rate))
    uplinks = feed_stream(relay, 86_400)
    cfg = relay.config
    on_air = [(0, relay.join_airtime_ms)] + [(u.t_ms, u.airtime_ms) for u in uplinks]
    # Checked without the ledger's code: any hour at most 36 s, any day at most 30 s.
    assert _max_in_windows(on_air, 3_600_000) <= 36_000
    assert _max_in_windows(on_air, 86_400_000) <= 30_000
    for previous, uplink in itertools.pairwise(uplinks):
        assert uplink.t_ms - previous.t_ms >= 100 * previous.airtime_ms  # the radio's rest
    for uplink in uplinks:
        assert uplink.airtime_ms == airtime_charge_ms(len(uplink.payload), sf=cfg.sf)
        assert decode(uplink.payload, fport=uplink.fport) == uplink.message
    # The pacer never lends more than its burst plus a second of credit per second, and one
    # message dearer than what is left may overdraw it once.
    spent = sum(pacer_cost(u.airtime_ms, daily_budget_s=30) for u in uplinks)
    assert spent <= PACER_BURST_S + 86_400 + max(
        pacer_cost(u.airtime_ms, daily_budget_s=30) for u in uplinks
    )


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("data_rate", [5, 0])
def test_every_reading_is_in_a_sent_window_the_open_window_or_counted(
    mode: Mode, data_rate: int
) -> None:
    relay = Aggregator(RelayConfig(mode=mode, data_rate=data_rate, window_s=30))
    uplinks = feed_stream(relay, 20_000, seed=data_rate)
    carried = sum(u.readings for u in uplinks)
    assert carried + relay.pending_readings == relay.received
    assert relay.received + relay.dropped == 20_000  # one camera reading per second


def test_without_a_budget_every_window_goes_out() -> None:
    relay = Aggregator(
        RelayConfig(mode=Mode.READING, window_s=1, budget=False, status_interval_min=0)
    )
    uplinks = feed_stream(relay, 600)
    assert len(windows(uplinks)) >= 590


def test_a_noisy_classifier_at_sf12_neither_starves_windows_nor_drops_readings() -> None:
    # A classifier guessing at random makes a change every few seconds. Each costs less credit
    # than a window needs, so before changes were limited to one per window no window went
    # out at SF12 all day and the full window dropped 20 865 readings.
    rng = random.Random(7)
    relay = Aggregator(RelayConfig(data_rate=0))
    uplinks: list[Uplink] = []
    for t in range(86_400):
        label = rng.randrange(len(FER2013))
        relay.handle_frame(t * 1000, reading(label, rng.randrange(20, 90)))
        uplinks += relay.poll(t * 1000)
    sent = windows(uplinks)
    assert len(sent) >= 6 and relay.dropped == 0
    assert sum(u.readings for u in sent) + relay.pending_readings == relay.received == 86_400
    # Between two windows the pacer has to earn one window with its reserve (8074 s here),
    # and may also pay for one change (3330 s) and one status (4744 s): at most 4.5 h.
    starts = [0] + [u.t_ms for u in sent]
    assert max(b - a for a, b in itertools.pairwise(starts)) <= 16_200_000
    changes = [u.t_ms for u in uplinks if u.kind == "change"]
    assert len(changes) >= 6
    for a, b in itertools.pairwise(starts):
        assert sum(a < t < b for t in changes) <= 1


# -- the device ledger ----------------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 400_000), st.integers(1, 3000)), max_size=80))
@settings(max_examples=60, deadline=None)
def test_device_ledger_agrees_with_the_budget_ledger_until_full(ops: list[tuple[int, int]]) -> None:
    device = DeviceLedger(capacity=1000)
    reference = AirtimeLedger(capacity=1000)
    now = 0
    for gap, airtime in ops:
        now += gap
        assert device.can_send(now, airtime) == reference.can_send(now, airtime)
        assert device.try_record(now, airtime) == reference.try_record(now, airtime)
        assert device.used_day_ms(now) == reference.used_day_ms(now)


def test_a_full_device_ledger_merges_and_never_under_counts() -> None:
    rng = random.Random(5)
    small = DeviceLedger(capacity=4, daily_cap_ms=0)
    exact = DeviceLedger(capacity=10_000, daily_cap_ms=0)
    now = 0
    for _ in range(500):
        now += rng.randrange(0, 200_000)
        airtime = rng.randrange(40, 2000)
        small.record(now, airtime)
        exact.record(now, airtime)
        assert len(small) <= 4
        assert small.used_hour_ms(now) >= exact.used_hour_ms(now)


def test_the_ledger_capacity_is_the_sketchs() -> None:
    # One number in three places: the C++ default, the twin, and the traces the C++ tests
    # replay (a trace of another capacity would be skipped there, not failed).
    header = (CORE / "LoraEmotionCore.h").read_text()
    (defined,) = re.findall(r"#define LORA_EMOTION_LEDGER_CAPACITY (\d+)", header)
    traces = json.loads((ROOT / "tests" / "vectors" / "ledger.json").read_text())["traces"]
    assert {int(defined)} == {t["capacity"] for t in traces} == {DEFAULT_LEDGER_CAPACITY}


def test_time_going_backwards_is_refused() -> None:
    relay = Aggregator(RelayConfig(**FREE))
    relay.add_reading(5000, "happy", 0.5)
    with pytest.raises(EncodeError, match="backwards"):
        relay.add_reading(4000, "happy", 0.5)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"window_s": 0}, "window_s"),
        ({"daily_budget_s": 2000}, "daily_budget_s"),
        ({"data_rate": 7}, "data_rate"),
        ({"status_interval_min": -1}, "status_interval_min"),
        ({"label_set": LabelSet(6, "many", tuple(f"c{i}" for i in range(17)))}, "label_set"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        RelayConfig(**changes)  # type: ignore[arg-type]
    assert caught.value.field == field


# -- the C++ twin ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def relay_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/relay_twin/relay_twin.cpp built against the sketch's core with the host g++."""
    compiler = shutil.which("g++")
    if compiler is None or not (CORE / "LoraEmotionRelay.cpp").exists():
        reason = "g++ or the sketch's C++ core is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(f"required under CI=true: {reason}")
        pytest.skip(reason)
    binary = tmp_path_factory.mktemp("twin") / "relay_twin"
    subprocess.run(
        [
            compiler,
            "-std=gnu++11",
            "-O1",
            f"-I{CORE}",
            "-o",
            str(binary),
            str(ROOT / "tests" / "relay_twin" / "relay_twin.cpp"),
            str(CORE / "LoraEmotionCore.cpp"),
            str(CORE / "LoraEmotionRelay.cpp"),
        ],
        check=True,
        capture_output=True,
    )
    return binary


def _twin_input(
    label_set: LabelSet, seconds: int, seed: int, *, guessing: bool = False
) -> list[tuple[int, bytes]]:
    """A host at 1 Hz plus the odd faces frame, bare reading, foreign set, damage and noise.

    ``guessing`` replaces the simulated model by one that picks a class at random each second.
    """
    rng = random.Random(seed)
    stream = EmotionStream(StreamConfig(label_set=label_set), seed=seed)
    steps = []
    for _ in range(seconds):
        observation = stream.next()
        frames: list[Frame] = observation_frames(observation, label_set)
        if guessing:
            label = rng.randrange(len(label_set))
            frames = [
                ReadingFrame(label_set=label_set.id, label=label, confidence_pct=rng.randrange(101))
            ]
        data = b"".join(encode_frame(f) for f in frames)
        roll = rng.random()
        if roll < 0.02:
            faces = (
                FaceEntry(label=rng.randrange(len(label_set)), confidence_pct=80),
                FaceEntry(label=0),
            )
            data += encode_frame(FacesFrame(label_set=label_set.id, faces=faces))
        elif roll < 0.04:
            data += encode_frame(
                ReadingFrame(label_set=label_set.id, label=rng.randrange(len(label_set)))
            )
        elif roll < 0.05:
            data += encode_frame(
                ReadingFrame(label_set=(label_set.id + 1) % 6, label=1, confidence_pct=50)
            )
        elif roll < 0.06:
            damaged = bytearray(
                encode_frame(ReadingFrame(label_set=label_set.id, label=1, confidence_pct=50))
            )
            damaged[-1] ^= 0x40
            data += bytes(damaged)
        elif roll < 0.07:
            data += b"hello from the host\r\n"
        elif roll < 0.075:
            data += encode_frame(ReadingFrame(label_set=label_set.id, label=len(label_set) + 2))
        steps.append((observation.t_ms, data))
    return steps


TWIN_CASES = {
    # name: (label set, data rate, seconds, seed, command downlink applied at 0 ms, guessing)
    "summary-dr5": (FER2013, 5, 21_600, 1, b"", False),
    "reading-dr5": (FER2013, 5, 21_600, 2, bytes([1, 2, 0]), False),
    "distribution-dr3": (FER2013, 3, 21_600, 3, bytes([2, 2, 1]), False),
    "vitals-physio3": (PHYSIO3, 5, 21_600, 4, bytes([3, 2, 3]), False),
    "window-and-budget-dr0": (
        FER2013,
        0,
        21_600,
        5,
        bytes([4, 1, 0, 29, 3, 0, 59, 6, 0, 30]),
        False,
    ),
    "summary-dr0-full-day": (FER2013, 0, 86_400, 6, b"", False),
    # Changes every few seconds: one change per window, the rest wait for the window.
    "guessing-dr0-full-day": (FER2013, 0, 86_400, 9, b"", True),
    "guessing-dr5": (FER2013, 5, 21_600, 10, b"", True),
    "rejected-command": (FER2013, 5, 3_600, 7, bytes([8, 2, 9]), False),
    "unknown-command": (FER2013, 5, 3_600, 8, bytes([9, 7, 0]), False),
}


@pytest.mark.parametrize("case", list(TWIN_CASES))
def test_the_python_relay_decides_what_the_cpp_relay_decides(relay_twin: Path, case: str) -> None:
    label_set, data_rate, seconds, seed, command, guessing = TWIN_CASES[case]
    steps = _twin_input(label_set, seconds, seed, guessing=guessing)
    argv = [str(relay_twin), str(data_rate), str(label_set.id)]
    if command:
        argv.append(command.hex())
    script = "".join(f"{t} {data.hex() or '-'}\n" for t, data in steps)
    result = subprocess.run(argv, input=script, capture_output=True, text=True, check=True)
    cpp = result.stdout.splitlines()

    relay = Aggregator(RelayConfig(label_set=label_set, data_rate=data_rate))
    if command:
        relay.downlink(0, 3, command)
    python = []
    for t, data in steps:
        relay.serial_bytes(t, data)
        python += [f"UP {u.t_ms} {u.fport} {u.payload.hex().upper()}" for u in relay.poll(t)]
    python.append(
        f"END received={relay.received} dropped={relay.dropped} invalid={relay.invalid} "
        f"window={relay.pending_readings}"
    )
    assert len(python) > 3
    assert python == cpp
    if guessing:  # summary mode: port 16 is a change, 16 + 3 a window
        ports = [line.split()[2] for line in cpp[:-1]]
        between_windows = "".join("w" if p == "19" else "c" if p == "16" else "" for p in ports)
        assert "w" in between_windows and "cc" not in between_windows


def test_a_command_is_acknowledged_in_the_next_status_and_a_new_set_empties_the_window() -> None:
    relay = Aggregator(RelayConfig(**FREE))
    run(relay, [(0, []), (1000, [reading(3, 90)])])
    fingerprint = PHYSIO3.fingerprint.to_bytes(2, "big")
    command = bytes([17, 2, 0, 4, 2, 3]) + fingerprint  # seq 17: reading mode, physio3
    assert relay.downlink(2000, 3, command) is CommandStatus.APPLIED
    (status,) = relay.poll(2000)
    assert isinstance(status.message, Status)
    assert status.message.command_seq == 17
    assert status.message.command_status is CommandStatus.APPLIED
    assert status.message.mode is Mode.READING and status.message.label_set_id == 2
    assert relay.dropped == 1 and relay.pending_readings == 0  # the fer2013 reading is gone
    # A set whose fingerprint disagrees is refused, and nothing of the command applies.
    assert relay.downlink(3000, 3, bytes([18, 2, 2, 4, 0, 7, 0, 0])) is CommandStatus.REJECTED
    assert relay.mode is Mode.READING and relay.label_set == PHYSIO3
    assert relay.downlink(4000, 3, bytes([19, 99])) is CommandStatus.UNKNOWN_COMMAND
    assert relay.downlink(5000, 16, bytes([20, 2, 0])) is None  # not the command port
