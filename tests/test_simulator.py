"""The emotion stream model: determinism, classifier realism, presence, physiology."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_emotion.errors import EncodeError
from lora_emotion.labels import BUILTIN_SETS, FER2013, PHYSIO3
from lora_emotion.simulator import (
    AROUSAL,
    EmotionStream,
    Observation,
    StreamConfig,
    _scr_shape,
    class_prior,
)


def run(stream: EmotionStream, frames: int) -> list[Observation]:
    return [stream.next() for _ in range(frames)]


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a = run(EmotionStream(seed=7), 300)
    b = run(EmotionStream(seed=7), 300)
    c = run(EmotionStream(seed=8), 300)
    assert a == b
    assert a != c


def test_clock_advances_by_the_frame_interval() -> None:
    stream = EmotionStream(StreamConfig(frame_interval_ms=250), seed=1, start_ms=5_000)
    times = [o.t_ms for o in run(stream, 5)]
    assert times == [5_000, 5_250, 5_500, 5_750, 6_000]
    assert stream.t_ms == 6_250


@given(seed=st.integers(0, 2**32), label_set=st.sampled_from(BUILTIN_SETS))
@settings(max_examples=30, deadline=None)
def test_every_prediction_is_a_consistent_distribution(seed: int, label_set: object) -> None:
    config = StreamConfig(label_set=label_set, bystanders_per_min=6.0, max_faces=3)  # type: ignore[arg-type]
    for observation in run(EmotionStream(config, seed=seed), 60):
        assert len(observation.faces) <= 3
        for position, face in enumerate(observation.faces):
            assert math.isclose(sum(face.probabilities), 1.0, abs_tol=1e-9)
            assert face.confidence == max(face.probabilities)
            assert face.probabilities[config.label_set.index(face.label)] == face.confidence
            assert face.true_label in config.label_set.labels
            # The subject, when present, is reported first.
            assert not face.subject or position == 0
        vitals = observation.vitals
        assert vitals is not None
        assert 35 <= vitals.heart_rate_bpm <= 220
        assert 0.0 <= vitals.skin_conductance_us <= 100.0
        assert round(vitals.skin_conductance_us * 100) == pytest.approx(
            vitals.skin_conductance_us * 100, abs=1e-6
        )


def _subject_runs(observations: list[Observation]) -> float:
    runs, current, length = [], None, 0
    for observation in observations:
        face = observation.primary
        label = face.true_label if face is not None else None
        if label == current:
            length += 1
        else:
            if current is not None:
                runs.append(length)
            current, length = label, 1
    return statistics.mean(runs)


def test_moods_are_sticky_and_stickiness_sets_their_length() -> None:
    always_there = {"mean_present_s": 1e9, "mean_away_s": 1.0, "bystanders_per_min": 0.0}
    sticky = run(EmotionStream(StreamConfig(stickiness=0.98, **always_there), seed=2), 20_000)
    fickle = run(EmotionStream(StreamConfig(stickiness=0.6, **always_there), seed=2), 20_000)
    # A geometric run with p_stay = 0.98 lasts 50 frames on average; 0.6 lasts 2.5.
    assert 35 < _subject_runs(sticky) < 70
    assert _subject_runs(fickle) < 4


def test_classifier_accuracy_follows_clarity() -> None:
    def accuracy(clarity: float) -> float:
        observations = run(EmotionStream(StreamConfig(clarity=clarity), seed=3), 4_000)
        faces = [o.primary for o in observations if o.primary is not None]
        return sum(f.label == f.true_label for f in faces) / len(faces)

    assert accuracy(8.0) > 0.97
    assert 0.65 < accuracy(2.6) < 0.92  # the default: usually right, not always
    assert accuracy(0.0) < 0.35  # chance is 1/7 plus the AR noise's inertia


def test_confidences_land_where_real_models_put_them() -> None:
    observations = run(EmotionStream(seed=4), 5_000)
    confidences = sorted(o.primary.confidence for o in observations if o.primary is not None)
    median = confidences[len(confidences) // 2]
    assert 0.45 < median < 0.85
    assert confidences[len(confidences) // 10] > 1 / 7  # an argmax is never below chance
    assert confidences[-1] < 1.0


def test_faces_come_and_go() -> None:
    config = StreamConfig(mean_present_s=60.0, mean_away_s=20.0, bystanders_per_min=1.0)
    observations = run(EmotionStream(config, seed=5), 20_000)
    counts = [len(o.faces) for o in observations]
    subject_seen = sum(1 for o in observations if o.faces and o.faces[0].subject)
    assert 0 in counts and max(counts) >= 2
    # The subject is in view about 60 / (60 + 20) of the time.
    assert 0.65 < subject_seen / len(observations) < 0.85


def test_prior_favours_neutral_and_happy() -> None:
    prior = class_prior(FER2013)
    assert math.isclose(sum(prior), 1.0)
    ranked = sorted(FER2013.labels, key=lambda label: -prior[FER2013.index(label)])
    assert ranked[:2] == ["neutral", "happy"]


def test_heart_rate_and_skin_conductance_follow_arousal() -> None:
    config = StreamConfig(
        label_set=PHYSIO3,
        stickiness=0.995,
        mean_present_s=1e9,
        mean_away_s=1.0,
        bystanders_per_min=0.0,
        resting_hr_bpm=65.0,
        tonic_scl_us=3.0,
    )
    observations = run(EmotionStream(config, seed=6), 30_000)
    by_label: dict[str, list[tuple[int, float]]] = {"angry": [], "sad": []}
    for previous, observation in zip(observations, observations[30:], strict=False):
        # Compare settled states: the same true mood for the last 30 s.
        if previous.primary is None or observation.primary is None:
            continue
        label = observation.primary.true_label
        if label in by_label and previous.primary.true_label == label:
            assert observation.vitals is not None
            vitals = observation.vitals
            by_label[label].append((vitals.heart_rate_bpm, vitals.skin_conductance_us))
    angry_hr = statistics.mean(hr for hr, _ in by_label["angry"])
    sad_hr = statistics.mean(hr for hr, _ in by_label["sad"])
    assert AROUSAL["angry"] > AROUSAL["sad"]
    assert angry_hr - sad_hr > 8  # 30 bpm per unit of arousal, 0.6 apart
    angry_sc = statistics.mean(sc for _, sc in by_label["angry"])
    sad_sc = statistics.mean(sc for _, sc in by_label["sad"])
    assert angry_sc > sad_sc  # more phasic responses when aroused


def test_skin_conductance_response_has_unit_peak_and_decays() -> None:
    samples = [_scr_shape(t / 10) for t in range(0, 400)]
    assert samples[0] == 0.0
    assert max(samples) == pytest.approx(1.0, abs=1e-3)
    peak_at = samples.index(max(samples)) / 10
    assert 1.0 < peak_at < 3.5  # a fast rise ...
    assert _scr_shape(30.0) < 0.01  # ... and a slow recovery
    assert _scr_shape(-1.0) == 0.0


def test_without_the_sensor_there_are_no_vitals() -> None:
    assert all(o.vitals is None for o in run(EmotionStream(StreamConfig(vitals=False)), 10))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"stickiness": 1.5}, "stickiness"),
        ({"frame_interval_ms": 0}, "frame_interval_ms"),
        ({"mean_present_s": 0.0}, "mean_present_s"),
        ({"bystanders_per_min": -1.0}, "bystanders_per_min"),
        ({"max_faces": 17}, "max_faces"),
        ({"clarity": math.nan}, "clarity"),
        ({"label_set": "fer2013"}, "label_set"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        StreamConfig(**changes)  # type: ignore[arg-type]
    assert caught.value.field == field
