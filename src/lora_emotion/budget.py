"""Airtime budgets: how many uplinks a device may send, and a ledger that enforces it.

Why: the legal limit (1 % duty cycle per EU868 sub-band) and the network's fair-use cap
(30 s of uplink airtime per day) both count airtime, not messages. Two rules hold here:

* Rule 1 (duty cycle): in ANY sliding window of 3600 s, the airtime of the transmissions that
  started in the window, (now − 3600 s, now], plus the one about to start, is at most 36 s.
* Rule 2 (daily cap): the same over any sliding 24-h window, at most 30 s.

:func:`plan` answers "how often can I send this mix of messages" from these rules.
:class:`AirtimeLedger` enforces them one transmission at a time for the simulator and is
the reference for the device's C++ core: integer milliseconds, a fixed-capacity ring, no
clock of its own (the caller passes ``now_ms``, as the sketch passes ``millis()``).

Both count airtime in whole milliseconds rounded up (:func:`airtime_charge_ms`), so a plan
predicts exactly what the ledger admits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any

from .airtime import (
    LORAWAN_FRAME_OVERHEAD,
    MAX_PHY_PAYLOAD,
    DataRate,
    data_rate_for,
    time_on_air_ms,
    time_on_air_us,
)
from .errors import EncodeError, PayloadTooLargeError

__all__ = [
    "DAILY_WINDOW_S",
    "DEFAULT_LEDGER_CAPACITY",
    "DUTY_CYCLE",
    "DUTY_CYCLE_WINDOW_S",
    "FAIR_USE_DAILY_MS",
    "AirtimeLedger",
    "Constraint",
    "KindPlan",
    "Plan",
    "airtime_charge_ms",
    "duty_cycle_budget_ms",
    "plan",
]

#: 1 % duty cycle of sub-band g1 (868.0–868.6 MHz), which holds the three default EU868
#: channels (ETSI EN 300 220; the channels are those of RP002-1.0.3 §2.4).
DUTY_CYCLE = 0.01

#: ETSI EN 300 220 takes the duty cycle over an observation period of one hour.
DUTY_CYCLE_WINDOW_S = 3600

#: Community networks' fair-use policy: 30 s of uplink airtime per device per day.
FAIR_USE_DAILY_MS = 30_000

#: The fair-use cap is taken over a sliding 24-hour window.
DAILY_WINDOW_S = 86_400

#: Transmissions the ledger remembers. Each costs 8 bytes on the device (start and airtime,
#: two uint32), so 256 entries are 2 KiB of the SAMD21's 32 KiB RAM. With a daily cap the
#: ledger keeps a day of history, so this also caps uplinks at 256 per 24 h.
DEFAULT_LEDGER_CAPACITY = 256


def airtime_charge_ms(
    payload_size: int,
    *,
    sf: int,
    bandwidth_khz: int = 125,
    header_overhead: int = LORAWAN_FRAME_OVERHEAD,
) -> int:
    """Return the airtime of one LoRaWAN uplink in whole milliseconds, rounded up.

    This is what a budget is charged, so that rounding can only ever make it stricter.

    Args:
        payload_size: FRMPayload bytes.
        sf: spreading factor 7..12.
        bandwidth_khz: 125, 250 or 500.
        header_overhead: frame overhead, 13 plus any FOpts bytes.

    Returns:
        ceil(time on air / 1 ms), for example 1156 for a 2-byte payload at SF12/125 kHz.

    Raises:
        EncodeError: for an out-of-range argument (see :func:`airtime.time_on_air_us`).
    """
    micros = time_on_air_us(
        payload_size, sf=sf, bandwidth_khz=bandwidth_khz, header_overhead=header_overhead
    )
    return (micros + 999) // 1000


def duty_cycle_budget_ms(duty_cycle: float, window_s: int = DUTY_CYCLE_WINDOW_S) -> int:
    """Return the airtime a duty cycle allows per window, in whole ms rounded down.

    The fraction is read as the decimal it was written as, so 0.01 over 3600 s is exactly
    36 000 ms and not 35 999 from binary rounding.

    Args:
        duty_cycle: a fraction in (0, 1], for example 0.01.
        window_s: the window in seconds.

    Returns:
        The budget in ms.

    Raises:
        EncodeError: (field ``duty_cycle``) outside (0, 1], or (field ``window_s``) when the
            window is not a positive integer.
    """
    _check_fraction(duty_cycle)
    _check_positive_int(window_s, "window_s")
    return math.floor(Fraction(repr(float(duty_cycle))) * window_s * 1000)


def _check_fraction(duty_cycle: float) -> None:
    if (
        isinstance(duty_cycle, bool)
        or not isinstance(duty_cycle, int | float)
        or not 0 < duty_cycle <= 1
    ):
        raise EncodeError(f"{duty_cycle!r} is not a fraction in (0, 1]", field="duty_cycle")


def _check_positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise EncodeError(f"must be a positive integer, got {value!r}", field=field)
    return value


class Constraint(StrEnum):
    """The rule that limits a plan."""

    DUTY_CYCLE = "duty_cycle"
    DAILY_CAP = "daily_cap"


@dataclass(frozen=True, slots=True, kw_only=True)
class KindPlan:
    """One kind of message in a plan.

    Attributes:
        name: the kind's name (``reading``, ``status`` ...).
        payload_size: FRMPayload bytes.
        weight: relative frequency within the mix.
        airtime_ms: exact time on air.
        charge_ms: what a budget is charged for it (ceil to whole ms).
        per_day: expected uplinks of this kind per day under the plan.
    """

    name: str
    payload_size: int
    weight: float
    airtime_ms: float
    charge_ms: int
    per_day: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How often a message mix can be sent at one data rate, and what limits it.

    Attributes:
        sf: spreading factor.
        bandwidth_khz: bandwidth.
        data_rate: the EU868 DR index of that modulation, or None.
        duty_cycle: the duty-cycle fraction applied.
        duty_cycle_budget_ms: airtime allowed per 3600-s window.
        daily_cap_ms: airtime allowed per 24-h window, or None for no cap.
        kinds: one entry per message kind, in the order given.
        mean_airtime_ms: weighted mean charge of one uplink of the mix.
        max_per_hour: uplinks per hour the duty cycle allows.
        max_per_day_duty_cycle: uplinks per day the duty cycle allows (24 · max_per_hour).
        max_per_day_cap: uplinks per day the daily cap allows, or None without a cap.
        binding: the constraint that sets ``uplinks_per_day``.
        uplinks_per_day: what the device can send per day.
        min_interval_s: the shortest mean interval between uplinks that keeps to both rules
            when uplinks are evenly spaced; None when nothing can be sent.
        airtime_per_day_ms: the airtime charged per day at that rate.
    """

    sf: int
    bandwidth_khz: int
    data_rate: int | None
    duty_cycle: float
    duty_cycle_budget_ms: int
    daily_cap_ms: int | None
    kinds: tuple[KindPlan, ...]
    mean_airtime_ms: float
    max_per_hour: int
    max_per_day_duty_cycle: int
    max_per_day_cap: int | None
    binding: Constraint
    uplinks_per_day: int
    min_interval_s: float | None
    airtime_per_day_ms: float

    def kind(self, name: str) -> KindPlan:
        """Return the entry of one message kind.

        Args:
            name: the kind's name.

        Returns:
            Its :class:`KindPlan`.

        Raises:
            KeyError: when the mix has no such kind.
        """
        for entry in self.kinds:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-ready builtins (the CLI's ``--json`` output)."""
        return {
            "sf": self.sf,
            "bandwidth_khz": self.bandwidth_khz,
            "data_rate": self.data_rate,
            "duty_cycle": self.duty_cycle,
            "duty_cycle_budget_ms": self.duty_cycle_budget_ms,
            "daily_cap_ms": self.daily_cap_ms,
            "kinds": [
                {
                    "name": k.name,
                    "payload_size": k.payload_size,
                    "weight": k.weight,
                    "airtime_ms": k.airtime_ms,
                    "charge_ms": k.charge_ms,
                    "per_day": k.per_day,
                }
                for k in self.kinds
            ],
            "mean_airtime_ms": self.mean_airtime_ms,
            "max_per_hour": self.max_per_hour,
            "max_per_day_duty_cycle": self.max_per_day_duty_cycle,
            "max_per_day_cap": self.max_per_day_cap,
            "binding": self.binding.value,
            "uplinks_per_day": self.uplinks_per_day,
            "min_interval_s": self.min_interval_s,
            "airtime_per_day_ms": self.airtime_per_day_ms,
        }


MessageMix = Sequence[int] | Mapping[str, int | tuple[int, float]]


def _normalise_mix(message_sizes: MessageMix) -> list[tuple[str, int, float]]:
    kinds: list[tuple[str, int, float]] = []
    if isinstance(message_sizes, Mapping):
        for name, spec in message_sizes.items():
            if not isinstance(name, str) or not name:
                raise EncodeError(f"kind names must be non-empty strings: {name!r}", field="mix")
            if isinstance(spec, tuple):
                if len(spec) != 2:
                    raise EncodeError(
                        f"expected (size, weight), got {spec!r}", field=f"mix[{name}]"
                    )
                size, weight = spec
            else:
                size, weight = spec, 1.0
            kinds.append((name, size, weight))
    elif isinstance(message_sizes, str | bytes):
        raise EncodeError("expected sizes or a mapping of kinds", field="mix")
    else:
        # A plain list of sizes: repeats mean "more often", so they add to one kind.
        counts: dict[int, int] = {}
        for size in message_sizes:
            if isinstance(size, bool) or not isinstance(size, int):
                raise EncodeError(f"sizes must be integers, got {size!r}", field="mix")
            counts[size] = counts.get(size, 0) + 1
        kinds = [(f"{size}B", size, float(n)) for size, n in counts.items()]
    if not kinds:
        raise EncodeError("the message mix is empty", field="mix")
    for name, size, weight in kinds:
        if isinstance(size, bool) or not isinstance(size, int):
            raise EncodeError(f"size must be an integer, got {size!r}", field=f"mix[{name}]")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise EncodeError(
                f"weight must be a positive finite number, got {weight!r}", field=f"mix[{name}]"
            )
    return kinds


def plan(
    message_sizes: MessageMix,
    *,
    sf: int | DataRate = 12,
    bandwidth_khz: int | None = None,
    duty_cycle: float = DUTY_CYCLE,
    daily_cap_ms: int | None = FAIR_USE_DAILY_MS,
    header_overhead: int = LORAWAN_FRAME_OVERHEAD,
    max_payload: int | None = None,
) -> Plan:
    """Plan how many uplinks of a message mix fit the duty cycle and the daily cap.

    A mix is either a list of FRMPayload sizes (each one uplink; repeats weigh more) or a
    mapping ``{kind: (size, weight)}`` such as ``{"reading": (2, 10), "status": (15, 1)}``
    (ten readings per status message). A bare size in the mapping has weight 1.

    Counts are long-run averages for evenly spaced uplinks: a device that bursts may be held
    back by its ledger, but never sends more than the plan says per window. For a single
    kind sent as fast as the ledger allows, the counts are exact.

    Args:
        message_sizes: the mix, as above.
        sf: spreading factor 7..12, or a :class:`DataRate` (its SF and bandwidth are used).
        bandwidth_khz: 125, 250 or 500; defaults to 125 or the data rate's.
        duty_cycle: fraction of airtime allowed per 3600-s window.
        daily_cap_ms: airtime allowed per 24-h window, or None for no cap.
        header_overhead: frame overhead per uplink, 13 plus any FOpts bytes.
        max_payload: the largest allowed FRMPayload; None uses the EU868 limit of the data
            rate (RP002-1.0.3 §2.4.6) less any FOpts bytes, or whatever fits 255 bytes for
            a modulation EU868 does not define.

    Returns:
        A :class:`Plan`.

    Raises:
        EncodeError: naming the field for a malformed mix, an out-of-range argument, or a
            bandwidth that contradicts the data rate.
        PayloadTooLargeError: when a kind does not fit ``max_payload``.
    """
    if isinstance(sf, DataRate):
        if bandwidth_khz is not None and bandwidth_khz != sf.bandwidth_khz:
            raise EncodeError(f"{bandwidth_khz} kHz contradicts {sf.name}", field="bandwidth_khz")
        spreading_factor, bandwidth = sf.sf, sf.bandwidth_khz
    else:
        spreading_factor, bandwidth = sf, 125 if bandwidth_khz is None else bandwidth_khz
    budget_ms = duty_cycle_budget_ms(duty_cycle)
    if daily_cap_ms is not None:
        _check_positive_int(daily_cap_ms, "daily_cap_ms")
    kinds = _normalise_mix(message_sizes)

    # Validates sf and bandwidth before they are used to look up the data rate.
    time_on_air_us(0, sf=spreading_factor, bandwidth_khz=bandwidth, header_overhead=0)
    rate = data_rate_for(spreading_factor, bandwidth)
    if max_payload is not None:
        limit = max_payload
    elif rate is not None:
        # The regional limit counts FOpts against the FRMPayload.
        limit = rate.max_payload - max(0, header_overhead - LORAWAN_FRAME_OVERHEAD)
    else:
        limit = MAX_PHY_PAYLOAD - header_overhead

    charged: list[tuple[str, int, float, float, int]] = []
    for name, size, weight in kinds:
        if size > limit:
            raise PayloadTooLargeError(field=f"mix[{name}]", size=size, limit=limit)
        try:
            exact = time_on_air_ms(
                size, sf=spreading_factor, bandwidth_khz=bandwidth, header_overhead=header_overhead
            )
        except EncodeError as exc:
            # Say which kind was wrong; the airtime module only knows "payload_size".
            raise EncodeError(exc.reason, field=f"mix[{name}]") from exc
        charge = airtime_charge_ms(
            size, sf=spreading_factor, bandwidth_khz=bandwidth, header_overhead=header_overhead
        )
        charged.append((name, size, float(weight), exact, charge))

    # Exact rationals, so that a budget that is an exact multiple of the mean charge is not
    # lost to a float that lands a hair below the integer.
    total_weight = sum(Fraction(w) for _, _, w, _, _ in charged)
    mean_charge = sum(Fraction(w) * c for _, _, w, _, c in charged) / total_weight
    max_per_hour = math.floor(budget_ms / mean_charge)
    per_day_duty = max_per_hour * (DAILY_WINDOW_S // DUTY_CYCLE_WINDOW_S)
    per_day_cap = None if daily_cap_ms is None else math.floor(daily_cap_ms / mean_charge)
    if per_day_cap is not None and per_day_cap <= per_day_duty:
        binding, per_day = Constraint.DAILY_CAP, per_day_cap
    else:
        binding, per_day = Constraint.DUTY_CYCLE, per_day_duty

    return Plan(
        sf=spreading_factor,
        bandwidth_khz=bandwidth,
        data_rate=None if rate is None else rate.index,
        duty_cycle=duty_cycle,
        duty_cycle_budget_ms=budget_ms,
        daily_cap_ms=daily_cap_ms,
        kinds=tuple(
            KindPlan(
                name=name,
                payload_size=size,
                weight=weight,
                airtime_ms=exact,
                charge_ms=charge,
                per_day=float(per_day * Fraction(weight) / total_weight),
            )
            for name, size, weight, exact, charge in charged
        ),
        mean_airtime_ms=float(mean_charge),
        max_per_hour=max_per_hour,
        max_per_day_duty_cycle=per_day_duty,
        max_per_day_cap=per_day_cap,
        binding=binding,
        uplinks_per_day=per_day,
        # Evenly spaced at 86400/N s, any hour holds at most N/24 <= max_per_hour uplinks
        # and any day at most N, so this spacing satisfies both sliding windows.
        min_interval_s=DAILY_WINDOW_S / per_day if per_day else None,
        airtime_per_day_ms=float(per_day * mean_charge),
    )


class AirtimeLedger:
    """Remembers recent transmissions and says whether another one keeps to the rules.

    Mutable and sans-IO: every method takes the caller's clock, ``now_ms``, which must never
    go backwards. Times and airtimes are integer milliseconds, as on the device.

    A transmission that started at ``s`` counts in the window at ``now`` while
    ``now - s < window``. It is forgotten once it is outside every window that is checked:
    after the daily window when a daily cap is set, after the duty-cycle window otherwise.

    Memory is a fixed-capacity ring, as on the device. When the ring is full of
    transmissions that still count, the ledger refuses to send (``can_send`` is False,
    ``record`` raises) until the oldest one is forgotten: dropping history would make it
    under-count, so it errs on the side of silence.

    C++ port notes: keep ``uint32_t`` start times from ``millis()`` and compute ages as
    ``now - start`` in unsigned arithmetic, which stays right across the 49.7-day wrap
    because entries are forgotten within a day.

    Args:
        duty_cycle_budget_ms: airtime allowed per duty-cycle window (36 000 for 1 %).
        duty_cycle_window_ms: the duty-cycle window (3 600 000).
        daily_cap_ms: airtime allowed per daily window, or None for no daily cap.
        daily_window_ms: the daily window (86 400 000).
        capacity: how many transmissions the ring holds.

    Raises:
        EncodeError: naming the field for a non-positive or non-integer setting.
    """

    __slots__ = (
        "_airtimes",
        "_count",
        "_head",
        "_last_now",
        "_retention_ms",
        "_starts",
        "capacity",
        "daily_cap_ms",
        "daily_window_ms",
        "duty_cycle_budget_ms",
        "duty_cycle_window_ms",
    )

    def __init__(
        self,
        *,
        duty_cycle_budget_ms: int = 36_000,
        duty_cycle_window_ms: int = DUTY_CYCLE_WINDOW_S * 1000,
        daily_cap_ms: int | None = FAIR_USE_DAILY_MS,
        daily_window_ms: int = DAILY_WINDOW_S * 1000,
        capacity: int = DEFAULT_LEDGER_CAPACITY,
    ) -> None:
        self.duty_cycle_budget_ms = _check_positive_int(
            duty_cycle_budget_ms, "duty_cycle_budget_ms"
        )
        self.duty_cycle_window_ms = _check_positive_int(
            duty_cycle_window_ms, "duty_cycle_window_ms"
        )
        self.daily_cap_ms = (
            None if daily_cap_ms is None else _check_positive_int(daily_cap_ms, "daily_cap_ms")
        )
        self.daily_window_ms = _check_positive_int(daily_window_ms, "daily_window_ms")
        self.capacity = _check_positive_int(capacity, "capacity")
        self._retention_ms = (
            duty_cycle_window_ms
            if daily_cap_ms is None
            else max(duty_cycle_window_ms, daily_window_ms)
        )
        self._starts = [0] * capacity
        self._airtimes = [0] * capacity
        self._head = 0
        self._count = 0
        self._last_now = 0

    def __len__(self) -> int:
        """Number of transmissions currently remembered."""
        return self._count

    @property
    def transmissions(self) -> tuple[tuple[int, int], ...]:
        """The remembered transmissions as ``(start_ms, airtime_ms)``, oldest first."""
        return tuple(self._entry(i) for i in range(self._count))

    def _entry(self, i: int) -> tuple[int, int]:
        slot = (self._head + i) % self.capacity
        return self._starts[slot], self._airtimes[slot]

    def _advance(self, now_ms: int) -> None:
        if isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < 0:
            raise EncodeError(f"must be a non-negative integer, got {now_ms!r}", field="now_ms")
        if now_ms < self._last_now:
            raise EncodeError(
                f"time went backwards: {now_ms} after {self._last_now}", field="now_ms"
            )
        self._last_now = now_ms
        while self._count and now_ms - self._starts[self._head] >= self._retention_ms:
            self._head = (self._head + 1) % self.capacity
            self._count -= 1

    def _used(self, now_ms: int, window_ms: int) -> int:
        total = 0
        for i in range(self._count):
            start, airtime = self._entry(i)
            if now_ms - start < window_ms:
                total += airtime
        return total

    @staticmethod
    def _check_airtime(airtime_ms: int) -> None:
        if isinstance(airtime_ms, bool) or not isinstance(airtime_ms, int) or airtime_ms <= 0:
            raise EncodeError(f"must be a positive integer, got {airtime_ms!r}", field="airtime_ms")

    def used_hour_ms(self, now_ms: int) -> int:
        """Airtime of the transmissions that started in the duty-cycle window ending now.

        Args:
            now_ms: the current time.

        Returns:
            Milliseconds of airtime.

        Raises:
            EncodeError: (field ``now_ms``) when time is negative or went backwards.
        """
        self._advance(now_ms)
        return self._used(now_ms, self.duty_cycle_window_ms)

    def used_day_ms(self, now_ms: int) -> int:
        """Airtime of the transmissions that started in the daily window ending now.

        Without a daily cap the ledger only keeps one duty-cycle window of history, so this
        is then a lower bound.

        Args:
            now_ms: the current time.

        Returns:
            Milliseconds of airtime.

        Raises:
            EncodeError: (field ``now_ms``) when time is negative or went backwards.
        """
        self._advance(now_ms)
        return self._used(now_ms, self.daily_window_ms)

    def can_send(self, now_ms: int, airtime_ms: int) -> bool:
        """Say whether a transmission of this airtime may start now.

        Args:
            now_ms: the current time.
            airtime_ms: the charge of the transmission (see :func:`airtime_charge_ms`).

        Returns:
            True when both windows stay within budget and the ring has room.

        Raises:
            EncodeError: (field ``now_ms`` or ``airtime_ms``) for invalid arguments.
        """
        self._check_airtime(airtime_ms)
        self._advance(now_ms)
        if self._count >= self.capacity:
            return False
        if self._used(now_ms, self.duty_cycle_window_ms) + airtime_ms > self.duty_cycle_budget_ms:
            return False
        return not (
            self.daily_cap_ms is not None
            and self._used(now_ms, self.daily_window_ms) + airtime_ms > self.daily_cap_ms
        )

    def record(self, now_ms: int, airtime_ms: int) -> None:
        """Remember a transmission that started now.

        It is recorded even when it breaks a budget (a radio that sent must be accounted
        for); call :meth:`can_send` first, or use :meth:`try_record`.

        Args:
            now_ms: the start of the transmission.
            airtime_ms: its charge.

        Raises:
            EncodeError: (field ``now_ms`` or ``airtime_ms``) for invalid arguments, or
                (field ``capacity``) when the ring is full of transmissions that still count.
        """
        self._check_airtime(airtime_ms)
        self._advance(now_ms)
        if self._count >= self.capacity:
            raise EncodeError(
                f"all {self.capacity} slots hold transmissions still in a window",
                field="capacity",
            )
        slot = (self._head + self._count) % self.capacity
        self._starts[slot] = now_ms
        self._airtimes[slot] = airtime_ms
        self._count += 1

    def try_record(self, now_ms: int, airtime_ms: int) -> bool:
        """Record the transmission if :meth:`can_send` allows it.

        Args:
            now_ms: the current time.
            airtime_ms: the charge of the transmission.

        Returns:
            True if it was recorded (go ahead and transmit), False if not.

        Raises:
            EncodeError: (field ``now_ms`` or ``airtime_ms``) for invalid arguments.
        """
        if not self.can_send(now_ms, airtime_ms):
            return False
        self.record(now_ms, airtime_ms)
        return True

    def _clear_time(self, now_ms: int, window_ms: int, budget_ms: int, airtime_ms: int) -> int:
        # Walk the window oldest first; once enough has aged out for the new one to fit, the
        # answer is when the last entry walked over leaves the window.
        used = self._used(now_ms, window_ms)
        ready = now_ms
        for i in range(self._count):
            if used + airtime_ms <= budget_ms:
                break
            start, airtime = self._entry(i)
            if now_ms - start < window_ms:
                used -= airtime
                ready = start + window_ms
        return ready

    def next_allowed_ms(self, now_ms: int, airtime_ms: int) -> int:
        """Return the earliest time, at or after now, when :meth:`can_send` becomes True.

        This assumes nothing else is recorded meanwhile.

        Args:
            now_ms: the current time.
            airtime_ms: the charge of the transmission.

        Returns:
            A time in ms; ``now_ms`` itself if it may be sent now.

        Raises:
            EncodeError: (field ``now_ms``) for an invalid time, or (field ``airtime_ms``)
                when the airtime alone exceeds a budget, so that it can never be sent.
        """
        self._check_airtime(airtime_ms)
        if airtime_ms > self.duty_cycle_budget_ms or (
            self.daily_cap_ms is not None and airtime_ms > self.daily_cap_ms
        ):
            raise EncodeError(
                f"{airtime_ms} ms exceeds a budget on its own and can never be sent",
                field="airtime_ms",
            )
        self._advance(now_ms)
        ready = self._clear_time(
            now_ms, self.duty_cycle_window_ms, self.duty_cycle_budget_ms, airtime_ms
        )
        if self.daily_cap_ms is not None:
            ready = max(
                ready,
                self._clear_time(now_ms, self.daily_window_ms, self.daily_cap_ms, airtime_ms),
            )
        if self._count >= self.capacity:
            ready = max(ready, self._starts[self._head] + self._retention_ms)
        return ready
