"""Virtual emotion sources and devices: what a camera model and a wrist sensor would feed the relay.

Why a model and not replayed recordings: the webhook, the budget rules and the dashboards must be
exercised with data that *behaves* like the real thing (moods that last, a classifier that is
unsure and sometimes wrong, people walking in and out of view, a pulse that follows arousal),
at any scale, reproducibly. Everything here is sans-IO and deterministic for a seed: time is a
virtual millisecond clock advanced by the caller, randomness comes from one ``random.Random``
per stream, so the same seed gives the same observations and the same uplink bytes.

Rules of the model, one per concern:

* Rule 1 (sticky moods): a person's true emotion is a Markov chain that keeps its state with
  probability ``stickiness`` per frame and otherwise jumps to another class drawn from a prior
  in which neutral and happy dominate, as in the FER datasets.
* Rule 2 (an honest classifier): the model sees the true class through noise. Each class gets a
  logit of AR(1) noise (so outputs drift smoothly between frames) and the true class gets a
  "clarity" bonus that varies per frame; a softmax gives the distribution. The argmax is usually
  the true class, not always, and confidences land where real FER models put them (0.4-0.9).
* Rule 3 (faces come and go): the subject alternates between in view and away with exponential
  durations; bystanders arrive as a Poisson process and stay for an exponential time. The
  subject is always the first face when present, as a largest-face-first detector reports.
* Rule 4 (physiology follows arousal): heart rate is an Ornstein-Uhlenbeck process whose mean
  rises with the arousal of the true emotion; skin conductance is a slowly drifting tonic level
  plus phasic responses (Poisson, more frequent when aroused), each a difference of exponentials
  with a fast rise and a slow recovery. The sensor is worn, so vitals continue when the face is
  out of view.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .errors import EncodeError
from .labels import FER2013, LabelSet
from .relay_protocol import Frame, ReadingFrame, VitalsFrame, distribution_frame

__all__ = [
    "AROUSAL",
    "EmotionStream",
    "FacePrediction",
    "Observation",
    "StreamConfig",
    "VitalsSample",
    "class_prior",
    "observation_frames",
]

#: How activating each emotion is, 0 (calm) .. 1 (fear); used for heart rate and skin
#: conductance. Names from every built-in label set; unknown classes get ``_DEFAULT_AROUSAL``.
AROUSAL: dict[str, float] = {
    "neutral": 0.1,
    "calm": 0.0,
    "pleasant": 0.3,
    "unpleasant": 0.6,
    "happy": 0.5,
    "happiness": 0.5,
    "sad": 0.25,
    "sadness": 0.25,
    "angry": 0.85,
    "anger": 0.85,
    "fear": 0.9,
    "fearful": 0.9,
    "surprise": 0.75,
    "surprised": 0.75,
    "pleasant_surprise": 0.7,
    "disgust": 0.55,
    "contempt": 0.4,
}
_DEFAULT_AROUSAL = 0.4

#: Relative frequency of each class as a mood (Rule 1). FER-2013's training set is about one
#: quarter happy and one sixth neutral; in front of a camera neutral dominates further.
_PRIOR_WEIGHT: dict[str, float] = {
    "neutral": 3.0,
    "calm": 2.0,
    "happy": 2.5,
    "happiness": 2.5,
    "pleasant": 2.5,
    "sad": 1.0,
    "sadness": 1.0,
    "surprise": 0.8,
    "surprised": 0.8,
    "pleasant_surprise": 0.8,
    "angry": 0.7,
    "anger": 0.7,
    "unpleasant": 1.0,
    "fear": 0.4,
    "fearful": 0.4,
    "disgust": 0.25,
    "contempt": 0.25,
}

# AR(1) coefficient of the logit noise per 1-s frame: outputs decorrelate over ~3 frames.
_NOISE_AR = 0.7
# Heart rate (Rule 4): mean reversion per second, noise in bpm per sqrt(s), bpm added at arousal 1.
_HR_THETA = 0.08
_HR_SIGMA = 1.2
_HR_AROUSAL_BPM = 30.0
# Skin conductance (Rule 4): tonic level reversion per second and noise in µS per sqrt(s).
_SCL_THETA = 0.002
_SCL_SIGMA = 0.01
# Phasic responses per minute at arousal 0 and the increase at arousal 1.
_SCR_RATE_MIN = 1.0
_SCR_RATE_AROUSAL = 8.0
# Rise and recovery time constants of one skin-conductance response, in seconds.
_SCR_TAU_RISE = 0.75
_SCR_TAU_DECAY = 4.0
# A response is forgotten once it has decayed for this long (about e**-10 of its peak).
_SCR_FORGET_S = 40.0


def class_prior(label_set: LabelSet) -> tuple[float, ...]:
    """The probability of each class of ``label_set`` as a mood (Rule 1), summing to 1."""
    weights = [_PRIOR_WEIGHT.get(label, 1.0) for label in label_set.labels]
    total = sum(weights)
    return tuple(w / total for w in weights)


def _arousal(label: str) -> float:
    return AROUSAL.get(label, _DEFAULT_AROUSAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class FacePrediction:
    """The classifier's output for one face in one frame.

    Attributes:
        label: the most probable class (the classifier's answer).
        confidence: its probability.
        probabilities: every class's probability, in label-set order, summing to 1.
        true_label: the emotion the model was simulating (for evaluating a pipeline).
        subject: True for the person wearing the vitals sensor, False for a bystander.
    """

    label: str
    confidence: float
    probabilities: tuple[float, ...]
    true_label: str
    subject: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class VitalsSample:
    """One reading of the worn sensor: whole bpm, and µS rounded to the codec's 0.01 steps."""

    heart_rate_bpm: int
    skin_conductance_us: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """Everything the host model would hand the relay for one frame.

    Attributes:
        t_ms: the virtual time of the frame.
        faces: the faces found, subject first, possibly none.
        vitals: the sensor reading, or None when the stream has no sensor.
    """

    t_ms: int
    faces: tuple[FacePrediction, ...]
    vitals: VitalsSample | None

    @property
    def primary(self) -> FacePrediction | None:
        """The face the one-byte I2C contract reports: the first one, or None (no face)."""
        return self.faces[0] if self.faces else None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """Parameters of an emotion stream (see the module's rules).

    Attributes:
        label_set: the classes the simulated model predicts.
        frame_interval_ms: time between frames (the 2021 demo ran about once a second).
        stickiness: per-second probability that a mood persists (Rule 1); 0.98 gives moods
            of about 50 s on average.
        clarity: mean logit bonus of the true class (Rule 2); higher gives more confident,
            more accurate predictions.
        clarity_spread: standard deviation of that bonus from frame to frame.
        mean_present_s: mean time the subject stays in view (Rule 3).
        mean_away_s: mean time the subject is out of view.
        bystanders_per_min: arrival rate of other faces.
        mean_bystander_s: how long a bystander stays.
        max_faces: at most this many faces per frame.
        vitals: whether the subject wears the sensor.
        resting_hr_bpm: the subject's resting heart rate; None draws one in 55..80.
        tonic_scl_us: the subject's tonic skin conductance; None draws one in 1.5..8 µS.

    Raises:
        EncodeError: a parameter out of range (the field names it).
    """

    label_set: LabelSet = FER2013
    frame_interval_ms: int = 1000
    stickiness: float = 0.98
    clarity: float = 2.6
    clarity_spread: float = 1.0
    mean_present_s: float = 180.0
    mean_away_s: float = 25.0
    bystanders_per_min: float = 0.4
    mean_bystander_s: float = 20.0
    max_faces: int = 4
    vitals: bool = True
    resting_hr_bpm: float | None = None
    tonic_scl_us: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.label_set, LabelSet):
            raise EncodeError("expected a LabelSet", field="label_set")
        if (
            not isinstance(self.frame_interval_ms, int)
            or not 1 <= self.frame_interval_ms <= 3_600_000
        ):
            raise EncodeError("must be an integer 1..3600000", field="frame_interval_ms")
        if not 0.0 <= self.stickiness <= 1.0:
            raise EncodeError("must be within [0, 1]", field="stickiness")
        for name in ("clarity_spread", "bystanders_per_min"):
            if not 0.0 <= getattr(self, name) < math.inf:
                raise EncodeError("must be a finite number >= 0", field=name)
        for name in ("mean_present_s", "mean_away_s", "mean_bystander_s"):
            if not 0.0 < getattr(self, name) < math.inf:
                raise EncodeError("must be a finite number > 0", field=name)
        if not math.isfinite(self.clarity):
            raise EncodeError("must be finite", field="clarity")
        if not isinstance(self.max_faces, int) or not 0 <= self.max_faces <= 16:
            raise EncodeError("must be an integer 0..16", field="max_faces")


@dataclass(slots=True)
class _Track:
    """One face being followed: its true mood and the classifier's correlated noise."""

    state: int
    noise: list[float]
    subject: bool
    leave_p: float


@dataclass(slots=True)
class _Physiology:
    heart_rate: float
    resting: float
    tonic: float
    tonic_mean: float
    responses: list[tuple[float, float]] = field(default_factory=list)  # (start_s, amplitude)


class EmotionStream:
    """An endless, seeded stream of :class:`Observation`, one per frame.

    Sans-IO: :meth:`next` advances the stream's virtual clock by one frame and returns what
    the host model would report; nothing waits, nothing is read from the environment.

    Args:
        config: the model's parameters.
        seed: any integer; the same seed gives the same observations.
        start_ms: the virtual time of the first frame.
    """

    def __init__(self, config: StreamConfig | None = None, *, seed: int = 0, start_ms: int = 0):
        self.config = config or StreamConfig()
        self._rng = random.Random(seed)
        self._t_ms = start_ms
        label_set = self.config.label_set
        self._classes = len(label_set.labels)
        self._prior = class_prior(label_set)
        self._arousal = tuple(_arousal(label) for label in label_set.labels)
        dt = self.config.frame_interval_ms / 1000
        self._dt = dt
        self._stay_p = self.config.stickiness**dt
        self._leave_p = 1 - math.exp(-dt / self.config.mean_present_s)
        self._return_p = 1 - math.exp(-dt / self.config.mean_away_s)
        self._bystander_p = 1 - math.exp(-dt * self.config.bystanders_per_min / 60)
        self._bystander_leave_p = 1 - math.exp(-dt / self.config.mean_bystander_s)
        self._noise_keep = _NOISE_AR**dt
        self._noise_new = math.sqrt(1 - self._noise_keep**2)
        rng = self._rng
        self._subject = self._new_track(subject=True)
        self._subject_present = rng.random() < 0.85
        self._bystanders: list[_Track] = []
        resting = self.config.resting_hr_bpm
        if resting is None:
            resting = rng.uniform(55.0, 80.0)
        tonic = self.config.tonic_scl_us
        if tonic is None:
            tonic = rng.uniform(1.5, 8.0)
        self._body = _Physiology(heart_rate=resting, resting=resting, tonic=tonic, tonic_mean=tonic)

    @property
    def t_ms(self) -> int:
        """The virtual time of the next frame."""
        return self._t_ms

    def _draw_class(self, exclude: int | None = None) -> int:
        rng = self._rng
        weights = list(self._prior)
        if exclude is not None:
            weights[exclude] = 0.0
        total = sum(weights)
        target = rng.random() * total
        for index, weight in enumerate(weights):
            target -= weight
            if target < 0:
                return index
        return max(i for i, w in enumerate(weights) if w > 0)

    def _new_track(self, *, subject: bool) -> _Track:
        gauss = self._rng.gauss
        return _Track(
            state=self._draw_class(),
            noise=[gauss(0.0, 1.0) for _ in range(self._classes)],
            subject=subject,
            leave_p=0.0,
        )

    def _step_track(self, track: _Track) -> FacePrediction:
        rng = self._rng
        if self._classes > 1 and rng.random() > self._stay_p:
            track.state = self._draw_class(exclude=track.state)
        keep, new, gauss = self._noise_keep, self._noise_new, rng.gauss
        noise = track.noise
        for i in range(self._classes):
            noise[i] = keep * noise[i] + new * gauss(0.0, 1.0)
        clarity = max(0.0, gauss(self.config.clarity, self.config.clarity_spread))
        logits = list(noise)
        logits[track.state] += clarity
        top = max(logits)
        exps = [math.exp(x - top) for x in logits]
        total = sum(exps)
        probabilities = tuple(e / total for e in exps)
        best = max(range(self._classes), key=probabilities.__getitem__)
        labels = self.config.label_set.labels
        return FacePrediction(
            label=labels[best],
            confidence=probabilities[best],
            probabilities=probabilities,
            true_label=labels[track.state],
            subject=track.subject,
        )

    def _step_presence(self) -> None:
        rng = self._rng
        if self._subject_present:
            if rng.random() < self._leave_p:
                self._subject_present = False
        elif rng.random() < self._return_p:
            self._subject_present = True
        self._bystanders = [b for b in self._bystanders if rng.random() >= self._bystander_leave_p]
        if rng.random() < self._bystander_p:
            self._bystanders.append(self._new_track(subject=False))

    def _step_body(self) -> VitalsSample:
        rng, body, dt = self._rng, self._body, self._dt
        arousal = self._arousal[self._subject.state]
        t_s = self._t_ms / 1000
        target = body.resting + _HR_AROUSAL_BPM * arousal
        body.heart_rate += _HR_THETA * (target - body.heart_rate) * dt
        body.heart_rate += _HR_SIGMA * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        body.heart_rate = min(max(body.heart_rate, 35.0), 220.0)
        body.tonic += _SCL_THETA * (body.tonic_mean - body.tonic) * dt
        body.tonic += _SCL_SIGMA * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        body.tonic = max(body.tonic, 0.05)
        rate_per_s = (_SCR_RATE_MIN + _SCR_RATE_AROUSAL * arousal) / 60
        if rng.random() < 1 - math.exp(-rate_per_s * dt):
            # Response amplitudes are roughly log-normal, most between 0.05 and 1 µS.
            body.responses.append((t_s, min(rng.lognormvariate(math.log(0.25), 0.6), 3.0)))
        body.responses = [r for r in body.responses if t_s - r[0] < _SCR_FORGET_S]
        phasic = sum(amplitude * _scr_shape(t_s - start) for start, amplitude in body.responses)
        conductance = min(body.tonic + phasic, 100.0)
        return VitalsSample(
            heart_rate_bpm=round(body.heart_rate),
            skin_conductance_us=math.floor(conductance * 100 + 0.5) / 100,
        )

    def next(self) -> Observation:
        """The observation of the next frame; advances the clock by one frame interval."""
        self._step_presence()
        faces: list[FacePrediction] = []
        if self._subject_present:
            faces.append(self._step_track(self._subject))
        else:
            # The mood goes on while the subject is away; only the camera loses sight of it.
            if self._classes > 1 and self._rng.random() > self._stay_p:
                self._subject.state = self._draw_class(exclude=self._subject.state)
        for bystander in self._bystanders:
            prediction = self._step_track(bystander)
            if len(faces) < self.config.max_faces:
                faces.append(prediction)
        vitals = self._step_body() if self.config.vitals else None
        observation = Observation(t_ms=self._t_ms, faces=tuple(faces), vitals=vitals)
        self._t_ms += self.config.frame_interval_ms
        return observation


def _scr_peak() -> float:
    # Time and height of the maximum of exp(-t/τd) - exp(-t/τr), to normalise a response.
    tr, td = _SCR_TAU_RISE, _SCR_TAU_DECAY
    t_peak = math.log(td / tr) * tr * td / (td - tr)
    return math.exp(-t_peak / td) - math.exp(-t_peak / tr)


_SCR_PEAK = _scr_peak()


def _scr_shape(age_s: float) -> float:
    """A skin-conductance response of unit peak, ``age_s`` after its onset."""
    if age_s < 0:
        return 0.0
    return (math.exp(-age_s / _SCR_TAU_DECAY) - math.exp(-age_s / _SCR_TAU_RISE)) / _SCR_PEAK


def observation_frames(observation: Observation, label_set: LabelSet) -> list[Frame]:
    """The relay-protocol frames a host sends for one observation.

    The camera side reports the largest face, as the 2021 demo did, but with its whole
    distribution (weights in 1/10000); no face is a no-face reading. The worn sensor's sample
    goes in a vitals frame of its own, without a prediction, so that each frame of the camera
    counts as exactly one reading on the relay.
    """
    face = observation.primary
    frames: list[Frame] = [
        ReadingFrame(label_set=label_set.id, label=None)
        if face is None
        else distribution_frame(label_set, face.probabilities)
    ]
    vitals = observation.vitals
    if vitals is not None:
        frames.append(
            VitalsFrame(
                label_set=label_set.id,
                heart_rate_bpm=min(vitals.heart_rate_bpm, 250),
                skin_conductance_centi_us=min(round(vitals.skin_conductance_us * 100), 10_000),
            )
        )
    return frames
