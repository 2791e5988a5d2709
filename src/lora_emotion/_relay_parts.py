"""Parts of the relay's state, kept apart from its rules: window sums and the device ledger.

Internal to :mod:`lora_emotion.aggregator`, which re-exports :class:`DeviceLedger` and
:func:`pacer_cost`. Each part mirrors its C++ counterpart in ``arduino/LoraEmotion/src``
(``Window``, ``AirtimeLedger``, ``Relay::pacer_cost``) and keeps its arithmetic: integer sums,
means rounded half up, unsigned 32-bit ages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .labels import LabelSet
from .messages import Distribution, Message, Mode, Reading, Summary, Vitals
from .relay_protocol import quantise_weights

__all__ = [
    "DEFAULT_LEDGER_CAPACITY",
    "DeviceLedger",
    "Window",
    "make_reading",
    "pacer_cost",
    "rounded_mean",
]

#: LORA_EMOTION_LEDGER_CAPACITY of LoraEmotionCore.h.
DEFAULT_LEDGER_CAPACITY = 56
SUMMARY_MAX = 65_535  # kSummaryMaxReadings
WINDOW_MAX_S = 65_536  # kWindowRadix
UINT32 = 0xFFFF_FFFF


def rounded_mean(total: int, n: int) -> int:
    """The mean of ``n`` integers summing to ``total``, rounded half up, in integers."""
    return (2 * total + n) // (2 * n)


class DeviceLedger:
    """The sketch's AirtimeLedger: like :class:`lora_emotion.budget.AirtimeLedger`, but a full
    ring merges its two oldest entries (the later start keeps both airtimes) instead of
    refusing, which can only over-count. Times are ``millis()`` values, ages unsigned 32-bit.

    Args:
        duty_cycle_budget_ms, duty_cycle_window_ms: Rule 1 of the budget module.
        daily_cap_ms: airtime per daily window, 0 for none.
        daily_window_ms: the daily window.
        capacity: entries in the ring.
    """

    __slots__ = (
        "_airtimes",
        "_starts",
        "capacity",
        "daily_cap_ms",
        "daily_window_ms",
        "duty_budget_ms",
        "duty_window_ms",
    )

    def __init__(
        self,
        *,
        duty_cycle_budget_ms: int = 36_000,
        duty_cycle_window_ms: int = 3_600_000,
        daily_cap_ms: int = 30_000,
        daily_window_ms: int = 86_400_000,
        capacity: int = DEFAULT_LEDGER_CAPACITY,
    ) -> None:
        self.duty_budget_ms = duty_cycle_budget_ms
        self.duty_window_ms = duty_cycle_window_ms
        self.daily_cap_ms = daily_cap_ms
        self.daily_window_ms = daily_window_ms
        self.capacity = capacity
        self._starts: list[int] = []  # oldest first; a list stands in for the ring
        self._airtimes: list[int] = []

    def __len__(self) -> int:
        return len(self._starts)

    def _advance(self, now_ms: int) -> None:
        retention = (
            self.daily_window_ms
            if self.daily_cap_ms and self.daily_window_ms > self.duty_window_ms
            else self.duty_window_ms
        )
        while self._starts and (now_ms - self._starts[0]) & UINT32 >= retention:
            del self._starts[0], self._airtimes[0]

    def _used(self, now_ms: int, window_ms: int) -> int:
        return sum(
            airtime
            for start, airtime in zip(self._starts, self._airtimes, strict=True)
            if (now_ms - start) & UINT32 < window_ms
        )

    def used_hour_ms(self, now_ms: int) -> int:
        """Airtime in the duty-cycle window ending now."""
        self._advance(now_ms)
        return self._used(now_ms, self.duty_window_ms)

    def used_day_ms(self, now_ms: int) -> int:
        """Airtime in the daily window ending now."""
        self._advance(now_ms)
        return self._used(now_ms, self.daily_window_ms)

    def can_send(self, now_ms: int, airtime_ms: int) -> bool:
        """Whether a transmission of ``airtime_ms`` may start now (0 ms never may)."""
        if airtime_ms == 0:
            return False
        self._advance(now_ms)
        if self._used(now_ms, self.duty_window_ms) + airtime_ms > self.duty_budget_ms:
            return False
        return (
            not self.daily_cap_ms
            or self._used(now_ms, self.daily_window_ms) + airtime_ms <= self.daily_cap_ms
        )

    def record(self, now_ms: int, airtime_ms: int) -> bool:
        """Remember a transmission that started now; False only for 0 ms."""
        if airtime_ms == 0:
            return False
        self._advance(now_ms)
        if len(self._starts) == self.capacity:
            self._airtimes[1] += self._airtimes[0]
            del self._starts[0], self._airtimes[0]
        self._starts.append(now_ms & UINT32)
        self._airtimes.append(airtime_ms)
        return True

    def try_record(self, now_ms: int, airtime_ms: int) -> bool:
        """Record the transmission if :meth:`can_send` allows it."""
        return self.can_send(now_ms, airtime_ms) and self.record(now_ms, airtime_ms)


def pacer_cost(airtime_ms: int, *, daily_budget_s: int) -> int:
    """Seconds of pacer credit an uplink costs: its share of the daily cap, rounded up.

    ``airtime * 86400 / (daily_budget_s * 1000)``, as Relay::pacer_cost computes it.
    """
    budget = 5 * daily_budget_s
    return (airtime_ms * 432 + budget - 1) // budget


@dataclass(slots=True)
class Window:
    """Window: running sums of everything since the last window uplink."""

    classes: int
    start_s: int = 0
    total: int = 0
    no_face: int = 0
    counts: list[int] = field(default_factory=list)
    confidence_n: list[int] = field(default_factory=list)
    confidence_sum: list[int] = field(default_factory=list)
    share_sum: list[int] = field(default_factory=list)
    share_n: int = 0
    heart_n: int = 0
    heart_sum: int = 0
    skin_n: int = 0
    skin_sum: int = 0

    def reset(self, start_s: int) -> None:
        k = self.classes
        self.start_s, self.total, self.no_face, self.share_n = start_s, 0, 0, 0
        self.heart_n = self.heart_sum = self.skin_n = self.skin_sum = 0
        self.counts, self.confidence_n = [0] * k, [0] * k
        self.confidence_sum, self.share_sum = [0] * k, [0] * k

    def add(self, label: int | None, confidence: int | None, percent: Sequence[int] | None) -> bool:
        if self.total == SUMMARY_MAX:
            return False
        self.total += 1
        if label is None:
            self.no_face += 1
            return True
        self.counts[label] += 1
        if confidence is not None:
            self.confidence_sum[label] += confidence
            self.confidence_n[label] += 1
        if percent is not None:
            for i, share in enumerate(percent):
                self.share_sum[i] += share
        else:
            self.share_sum[label] += 100
        self.share_n += 1
        return True

    def add_vitals(self, heart: int | None, skin_centi: int | None) -> None:
        if heart is not None and self.heart_n != 0xFFFF:
            self.heart_sum += heart
            self.heart_n += 1
        if skin_centi is not None and self.skin_n != 0xFFFF:
            self.skin_sum += skin_centi
            self.skin_n += 1

    def has_content(self, mode: Mode) -> bool:
        return self.total != 0 or (mode is Mode.VITALS and (self.heart_n != 0 or self.skin_n != 0))

    def dominant(self) -> int | None:
        best, best_count = None, 0
        for i, count in enumerate(self.counts):
            if count > best_count:
                best, best_count = i, count
        return best

    def mean_confidence(self, label: int | None) -> int:
        if label is None or self.confidence_n[label] == 0:
            return 0
        return rounded_mean(self.confidence_sum[label], self.confidence_n[label])

    def build(self, label_set: LabelSet, mode: Mode, now_s: int) -> Message:
        window_s = min(max(now_s - self.start_s, 1), WINDOW_MAX_S)
        best = self.dominant()
        mean = self.mean_confidence(best)
        if mode is Mode.SUMMARY:
            return Summary(
                label_set=label_set,
                window_s=window_s,
                counts=tuple(self.counts),
                no_face=self.no_face,
                mean_confidence=None if best is None else mean / 100,
            )
        if mode is Mode.DISTRIBUTION and self.share_n:
            percent = quantise_weights(self.share_sum)
            return Distribution(label_set=label_set, probabilities=tuple(p / 100 for p in percent))
        if mode is Mode.VITALS and (self.heart_n or self.skin_n):
            reading = None
            if self.total:
                reading = make_reading(label_set, best, mean)
            skin = rounded_mean(self.skin_sum, self.skin_n) if self.skin_n else None
            return Vitals(
                label_set=label_set,
                heart_rate_bpm=rounded_mean(self.heart_sum, self.heart_n) if self.heart_n else None,
                skin_conductance_us=None if skin is None else skin / 100,
                reading=reading,
            )
        return make_reading(label_set, best, mean)


def make_reading(label_set: LabelSet, label: int | None, confidence_pct: int) -> Reading:
    """A Reading of class index ``label`` (None: no face) at a whole-percent confidence."""
    if label is None:
        return Reading(label_set=label_set, label=None)
    return Reading(
        label_set=label_set, label=label_set.labels[label], confidence=confidence_pct / 100
    )
