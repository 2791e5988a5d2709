"""Rule evaluation: from a device's new readings, its recent emotions and each rule's state to
the alerts to send and the states to keep. Pure: the store adapters in ``outbox.py`` read the
inputs and write the outputs inside the transaction that stores the deliveries.

Why a state per (rule, device) and transitions rather than "condition true means alert": a
condition that holds for an hour would otherwise alert on every delivery. An alert fires when
the condition starts to hold (and the rule's cooldown since its last alert for that device has
passed), and a recovery notice follows when it stops. A firing suppressed by the cooldown leaves
the state as it was, so the alert comes once the cooldown is over if the condition still holds.

Why a summary per device: see "settled devices" in ``outbox.py``. ``Evaluator.summary`` says,
after an evaluation, whether each rule on single emotions holds and fires ('1'), neither ('0')
or disagrees ('x': a firing its cooldown held back), and whether a silence rule fires;
``Evaluator.passage`` says which summary a delivery's new emotions leave unchanged. When they
are equal no evaluation could change a state: a k-of-n count cannot fall by adding a reading
that matches, nor rise by one that does not, and a change rule's latest emotion matches as it
did. A fingerprint of the rules leads the summary, so a summary written under other rules never
matches.

Why alert ids are derived, not random: ``al_`` + a hash of rule, device, status and the
delivery (or, for silence, the last delivery) that caused it. A batch retried after its
connection died during ``COMMIT`` produces the same id, which the unique key keeps once; and a
receiver can drop repeats by the id whichever worker sent it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from lora_emotion.labels import LabelRegistry
from lora_emotion.networks.kpn import EMOTION_NAME

from .rules import AlertSettings, ChangeRule, Rule, SilenceRule, SustainedRule, TroubleRule

__all__ = [
    "Emotion",
    "Evaluator",
    "NewAlert",
    "NewReading",
    "RuleState",
    "StateChange",
    "alert_id",
]

CONFIDENCE_NAME = "confidence"
#: Names of the readings that rules on window summaries and on status messages look at.
_WINDOW_NAMES = frozenset({"window"})
_STATUS_NAMES = frozenset({"labelSetId", "droppedReadings"})
_PASSAGES_LIMIT = 1_000
# Positions in a NewDelivery reading tuple (READING_COLUMNS without delivery_id).
_DEVICE, _TIME, _NAME, _VALUE, _STRING = 1, 2, 3, 5, 6

Status = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class Emotion:
    """One emotion record of a device (label ``none`` when no face was seen); ``time`` in
    seconds since the Unix epoch."""

    time: float
    delivery_id: int
    label: str
    confidence: float | None


@dataclass(frozen=True, slots=True)
class NewReading:
    """A reading of a delivery that this transaction inserted."""

    delivery_id: int
    dedup_key: str
    time: datetime
    name: str
    value: float | None
    string_value: str | None


@dataclass(frozen=True, slots=True)
class RuleState:
    """Whether a rule fires for a device, and when it last alerted."""

    firing: bool
    last_fired_at: datetime | None


@dataclass(frozen=True, slots=True)
class StateChange:
    rule: str
    device: str
    firing: bool
    changed_at: datetime
    last_fired_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to record and dispatch."""

    alert_id: str
    rule: str
    device: str
    status: Status
    severity: str
    created_at: datetime
    delivery_id: int | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    channels: tuple[str, ...] = ()


def alert_id(rule: str, device: str, status: str, cause: str) -> str:
    """The stable id of the alert ``rule`` raises (or resolves) for ``device`` because of
    ``cause`` (a delivery's dedup key, or ``after:<delivery id>`` for silence)."""
    digest = hashlib.sha256(f"{rule}\x00{device}\x00{status}\x00{cause}".encode()).hexdigest()
    return "al_" + digest[:32]


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A condition's value on what this batch brought, with words for a person."""

    holds: bool
    summary: str
    details: dict[str, Any]


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %"


def _ago(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _groups(readings: Sequence[NewReading]) -> list[dict[str, NewReading]]:
    """Readings grouped into messages (same delivery and time), oldest first."""
    grouped: dict[tuple[datetime, int], dict[str, NewReading]] = {}
    for reading in readings:
        grouped.setdefault((reading.time, reading.delivery_id), {})[reading.name] = reading
    return [grouped[key] for key in sorted(grouped)]


@dataclass(frozen=True, slots=True)
class _Selection:
    """The rules that select one device, by what they look at."""

    rules: tuple[Rule, ...]
    #: (rule, label, confidence, k, n) of the k-of-n rules.
    counted: tuple[tuple[SustainedRule, str, float, int, int], ...]
    #: (rule, labels, confidence) of the change rules.
    changes: tuple[tuple[ChangeRule, frozenset[str], float], ...]
    shares: tuple[SustainedRule, ...]
    troubles: tuple[TroubleRule, ...]
    silences: tuple[SilenceRule, ...]
    #: (labels, least confidence) of the counted and change rules, in summary order.
    emotional: tuple[tuple[frozenset[str], float], ...]
    #: (label, confidence) -> what ``Evaluator.passage`` makes of one such emotion.
    passages: dict[tuple[str, float], str] = field(default_factory=dict)


def _selection(rules: Sequence[Rule]) -> _Selection:
    counted = []
    changes = []
    shares = []
    troubles = []
    silences = []
    for rule in rules:
        if isinstance(rule, SustainedRule):
            if rule.share is not None:
                shares.append(rule)
            else:
                assert rule.k is not None and rule.n is not None
                counted.append((rule, rule.label, rule.confidence, rule.k, rule.n))
        elif isinstance(rule, ChangeRule):
            changes.append((rule, frozenset(rule.to), rule.confidence))
        elif isinstance(rule, TroubleRule):
            troubles.append(rule)
        else:
            silences.append(rule)
    emotional = [(frozenset({label}), least) for _, label, least, _, _ in counted]
    emotional += [(labels, least) for _, labels, least in changes]
    return _Selection(
        tuple(rules),
        tuple(counted),
        tuple(changes),
        tuple(shares),
        tuple(troubles),
        tuple(silences),
        tuple(emotional),
    )


def _agreement(holds: bool, firing: bool) -> str:
    if holds != firing:
        return "x"
    return "1" if holds else "0"


def _firing(states: dict[str, RuleState], name: str) -> bool:
    state = states.get(name)
    return state is not None and state.firing


class Evaluator:
    """The configured rules, ready to evaluate.

    Args:
        settings: the ``[alerts]`` table.
        registry: label sets the service decodes with (for label-set mismatches).
    """

    def __init__(self, settings: AlertSettings, registry: LabelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.rules: tuple[Rule, ...] = tuple(settings.rules)
        self.silence_rules = tuple(r for r in self.rules if isinstance(r, SilenceRule))
        windows = [r.n for r in self.rules if isinstance(r, SustainedRule) and r.n is not None]
        if any(isinstance(r, ChangeRule) for r in self.rules):
            windows.append(2)
        #: How many of a device's newest emotions the rules look at.
        self.depth = max(windows, default=0)
        self._selection_cache: dict[str, _Selection] = {}
        definition = {
            "rules": [rule.model_dump(mode="json") for rule in self.rules],
            "tags": settings.tags,
        }
        #: Leads every summary (12 hex digits of a hash of the rules and tags).
        self.fingerprint = hashlib.sha256(
            json.dumps(definition, sort_keys=True).encode()
        ).hexdigest()[:12]

    def _selected(self, device: str) -> _Selection:
        found = self._selection_cache.get(device)
        if found is None:
            if len(self._selection_cache) > 100_000:
                self._selection_cache.clear()
            found = _selection([r for r in self.rules if self.settings.selects(r, device)])
            self._selection_cache[device] = found
        return found

    def rules_for(self, device: str) -> tuple[Rule, ...]:
        """The rules that select ``device`` (remembered per device)."""
        return self._selected(device).rules

    def summary(
        self, device: str, emotions: Sequence[Emotion], states: dict[str, RuleState]
    ) -> str:
        """The summary of ``device`` after an evaluation: ``emotions`` newest first (the
        evaluation's, its new ones included), ``states`` as they are after it."""
        selected = self._selected(device)
        chars = [self.fingerprint, ":"]
        window = emotions[: self.depth]
        for rule, label, confidence, k, n in selected.counted:
            hits = 0
            for emotion in window[:n]:
                if emotion.label == label and (emotion.confidence or 0.0) >= confidence:
                    hits += 1
            chars.append(_agreement(hits >= k, _firing(states, rule.name)))
        latest = emotions[0] if emotions else None
        for change, labels, least in selected.changes:
            holds = (
                latest is not None
                and latest.label in labels
                and (latest.confidence or 0.0) >= least
            )
            chars.append(_agreement(holds, _firing(states, change.name)))
        silent = any(_firing(states, rule.name) for rule in selected.silences)
        chars.append("1" if silent else "0")
        return "".join(chars)

    def passage(self, device: str, readings: Sequence[tuple[Any, ...]]) -> str | None:
        """The summary that ``device`` must have for one delivery's ``readings`` (its
        NewDelivery reading tuples of that device) to change no rule state, as a SQL ``LIKE``
        pattern to follow ``fingerprint + ":"``; None when only an evaluation can tell
        (window summaries or status messages that rules look at, emotions that disagree)."""
        selected = self._selected(device)
        labels: list[tuple[Any, str]] = []
        confidences: dict[Any, float] = {}
        for row in readings:
            name = row[_NAME]
            if name == EMOTION_NAME:
                labels.append((row[_TIME], row[_STRING] or "none"))
            elif name == CONFIDENCE_NAME:
                confidences[row[_TIME]] = row[_VALUE] or 0.0
            elif (selected.shares and name in _WINDOW_NAMES) or (
                selected.troubles and name in _STATUS_NAMES
            ):
                return None
        if not labels:
            # No emotion: a rule on emotions keeps whatever it says; a silence ends.
            return "_" * len(selected.emotional) + "0"
        found = None
        for time, label in labels:
            passage = self._passage(selected, label, confidences.get(time, 0.0))
            if found is not None and passage != found:
                return None
            found = passage
        return found

    @staticmethod
    def _passage(selected: _Selection, label: str, confidence: float) -> str:
        found = selected.passages.get((label, confidence))
        if found is None:
            if len(selected.passages) > _PASSAGES_LIMIT:
                selected.passages.clear()
            chars = ["1" if label in labels and confidence >= least else "0"
                     for labels, least in selected.emotional]  # fmt: skip
            chars.append("0")
            found = selected.passages[(label, confidence)] = "".join(chars)
        return found

    def evaluate(
        self,
        device: str,
        readings: Sequence[NewReading],
        emotions: Sequence[Emotion],
        states: dict[str, RuleState],
        now: datetime,
    ) -> tuple[list[NewAlert], list[StateChange]]:
        """Alerts and state changes for ``device`` after a transaction inserted ``readings``.

        Args:
            device: the device URN.
            readings: its readings from deliveries this transaction inserted.
            emotions: its newest emotions, newest first, those readings included
                (``depth`` of them at most).
            states: rule name -> state, for rules that have one.
            now: the time of the evaluation (the deliveries' receive time).
        """
        alerts: list[NewAlert] = []
        changes: list[StateChange] = []
        if not readings:
            return alerts, changes
        newest = max(readings, key=lambda r: (r.delivery_id, r.time))
        names = {r.name for r in readings}
        selected = self._selected(device)
        # Whether a condition holds is cheap to know; the words for a person are made only for
        # a transition, which is rare: most deliveries change no rule's state. This loop runs
        # for every delivery, so it avoids even isinstance().
        moved: list[tuple[Rule, _Verdict | None, RuleState | None]] = []
        if EMOTION_NAME in names and emotions:
            if selected.counted:
                window = [(e.label, e.confidence or 0.0) for e in emotions[: self.depth]]
                present = {label for label, _ in window}
                for rule, label, confidence, k, n in selected.counted:
                    state = states.get(rule.name)
                    firing = state is not None and state.firing
                    if label in present:
                        hits = 0
                        for seen, sure in window[:n]:
                            if seen == label and sure >= confidence:
                                hits += 1
                        holds = hits >= k
                    else:
                        holds = False
                    if holds != firing:
                        moved.append((rule, None, state))
            latest = emotions[0]
            for change, labels, least in selected.changes:
                state = states.get(change.name)
                holds = latest.label in labels and (latest.confidence or 0.0) >= least
                if holds != (state is not None and state.firing):
                    moved.append((change, None, state))
        if "window" in names:
            for share in selected.shares:
                verdict = self._share(share, readings)
                state = states.get(share.name)
                if verdict is not None and verdict.holds != (state is not None and state.firing):
                    moved.append((share, verdict, state))
        if "labelSetId" in names or "droppedReadings" in names:
            for trouble in selected.troubles:
                verdict = self._trouble(trouble, readings)
                state = states.get(trouble.name)
                if verdict is not None and verdict.holds != (state is not None and state.firing):
                    moved.append((trouble, verdict, state))
        for silence in selected.silences:
            state = states.get(silence.name)
            if state is not None and state.firing:
                moved.append((silence, None, state))
        for which, found, state in moved:
            verdict = found or self._verdict(which, readings, emotions, newest)
            self._transition(
                which,
                device,
                verdict,
                state,
                now,
                newest.dedup_key,
                newest.delivery_id,
                alerts,
                changes,
            )
        return alerts, changes

    def _verdict(
        self,
        rule: Rule,
        readings: Sequence[NewReading],
        emotions: Sequence[Emotion],
        newest: NewReading,
    ) -> _Verdict:
        if isinstance(rule, SustainedRule):
            return self._sustained(rule, emotions)
        if isinstance(rule, ChangeRule):
            verdict = self._change(rule, emotions)
            assert verdict is not None
            return verdict
        return _Verdict(
            False, f"delivering again (reading of {newest.time:%Y-%m-%d %H:%M:%S} UTC)", {}
        )

    def evaluate_silence(
        self,
        rule: SilenceRule,
        device: str,
        last_delivery_id: int,
        last_received_at: datetime,
        state: RuleState | None,
        now: datetime,
    ) -> tuple[list[NewAlert], list[StateChange]]:
        """The silence rule's alert for ``device`` whose newest delivery is the one given."""
        alerts: list[NewAlert] = []
        changes: list[StateChange] = []
        quiet = (now - last_received_at).total_seconds()
        if quiet < rule.after_s:
            return alerts, changes
        verdict = _Verdict(
            True,
            f"no delivery for {_ago(quiet)} (limit {_ago(rule.after_s)}; last at "
            f"{last_received_at:%Y-%m-%d %H:%M:%S} UTC)",
            {
                "silent_s": round(quiet, 1),
                "after_s": rule.after_s,
                "last_delivery_id": last_delivery_id,
            },
        )
        self._transition(
            rule, device, verdict, state, now, f"after:{last_delivery_id}", None, alerts, changes
        )
        return alerts, changes

    def _transition(
        self,
        rule: Rule,
        device: str,
        verdict: _Verdict,
        state: RuleState | None,
        now: datetime,
        cause: str,
        delivery_id: int | None,
        alerts: list[NewAlert],
        changes: list[StateChange],
    ) -> None:
        firing = state is not None and state.firing
        last_fired = state.last_fired_at if state is not None else None
        if verdict.holds and not firing:
            if last_fired is not None and (now - last_fired).total_seconds() < rule.cooldown_s:
                return
            status: Status = "firing"
            changes.append(StateChange(rule.name, device, True, now, now))
        elif not verdict.holds and firing:
            status = "resolved"
            changes.append(StateChange(rule.name, device, False, now, last_fired))
            if not rule.recovery:
                return
        else:
            return
        summary = verdict.summary if status == "firing" else f"recovered: {verdict.summary}"
        alerts.append(
            NewAlert(
                alert_id=alert_id(rule.name, device, status, cause),
                rule=rule.name,
                device=device,
                status=status,
                severity=rule.severity,
                created_at=now,
                delivery_id=delivery_id,
                summary=summary,
                details={"kind": rule.kind, **verdict.details},
                channels=tuple(self.settings.channels_of(rule)),
            )
        )

    @staticmethod
    def _sustained(rule: SustainedRule, emotions: Sequence[Emotion]) -> _Verdict:
        assert rule.k is not None and rule.n is not None
        window = emotions[: rule.n]
        hits = sum(
            1 for e in window if e.label == rule.label and (e.confidence or 0.0) >= rule.confidence
        )
        at = f" at confidence ≥ {rule.confidence:.2f}" if rule.confidence > 0 else ""
        return _Verdict(
            hits >= rule.k,
            f"{rule.label}{at} in {hits} of the last {len(window)} readings "
            f"(alert at {rule.k} of {rule.n})",
            {"label": rule.label, "hits": hits, "of": len(window), "k": rule.k, "n": rule.n},
        )

    @staticmethod
    def _share(rule: SustainedRule, readings: Sequence[NewReading]) -> _Verdict | None:
        assert rule.share is not None
        summaries = [g for g in _groups(readings) if "window" in g and "readings" in g]
        if not summaries:
            return None
        latest = summaries[-1]
        total = latest["readings"].value or 0.0
        count = latest.get(f"count:{rule.label}")
        share = (count.value or 0.0) / total if count is not None and total > 0 else 0.0
        mean = latest.get(CONFIDENCE_NAME)
        confident = mean is None or (mean.value or 0.0) >= rule.confidence
        window = latest["window"].value or 0.0
        return _Verdict(
            share >= rule.share and confident,
            f"{rule.label} in {_percent(share)} of the readings of a {window:.0f} s window "
            f"(alert at {_percent(rule.share)})",
            {"label": rule.label, "share": round(share, 4), "window_s": window},
        )

    @staticmethod
    def _change(rule: ChangeRule, emotions: Sequence[Emotion]) -> _Verdict | None:
        if not emotions:
            return None
        latest = emotions[0]
        before = emotions[1].label if len(emotions) > 1 else None
        holds = latest.label in rule.to and (latest.confidence or 0.0) >= rule.confidence
        confidence = (
            f" (confidence {latest.confidence:.2f})" if latest.confidence is not None else ""
        )
        came_from = f" from {before}" if before is not None and before != latest.label else ""
        return _Verdict(
            holds,
            f"emotion is now {latest.label}{confidence}{came_from}",
            {"label": latest.label, "previous": before, "confidence": latest.confidence},
        )

    def _trouble(self, rule: TroubleRule, readings: Sequence[NewReading]) -> _Verdict | None:
        statuses = [g for g in _groups(readings) if "labelSetId" in g or "droppedReadings" in g]
        if not statuses:
            return None
        latest = statuses[-1]
        problems: list[str] = []
        details: dict[str, Any] = {}
        battery = latest.get("batteryLevel")
        if rule.battery_below is not None and battery is not None and battery.value is not None:
            details["battery_percent"] = battery.value
            if battery.value < rule.battery_below:
                problems.append(
                    f"battery at {battery.value:.0f} % (below {rule.battery_below:.0f} %)"
                )
        dropped = latest.get("droppedReadings")
        if rule.dropped_above is not None and dropped is not None and dropped.value is not None:
            details["dropped"] = dropped.value
            if dropped.value > rule.dropped_above:
                problems.append(f"{dropped.value:.0f} readings dropped")
        set_id = latest.get("labelSetId")
        if rule.label_set_mismatch and set_id is not None and set_id.value is not None:
            problem = self._label_set_problem(int(set_id.value), latest.get("labelSetFingerprint"))
            if problem:
                problems.append(problem)
                details["label_set"] = int(set_id.value)
        details["problems"] = problems
        if problems:
            return _Verdict(True, "device trouble: " + "; ".join(problems), details)
        return _Verdict(False, "status reports no trouble", details)

    def _label_set_problem(self, set_id: int, fingerprint: NewReading | None) -> str | None:
        known = self.registry.get(set_id)
        if known is None:
            return f"label set {set_id} is unknown to the service"
        if fingerprint is None or not fingerprint.string_value:
            return None
        try:
            reported = int(fingerprint.string_value, 16)
        except ValueError:
            return f"label set fingerprint {fingerprint.string_value!r} is not hexadecimal"
        # 0 is what firmware without a fingerprint sends.
        if reported not in (0, known.fingerprint):
            return (
                f"label set {set_id} differs: device fingerprint {reported:04x}, "
                f"service {known.fingerprint:04x}"
            )
        return None


def new_readings(
    delivery_id: int, dedup_key: str, readings: Sequence[tuple[Any, ...]]
) -> dict[str, list[NewReading]]:
    """The readings of one inserted delivery by device, from NewDelivery reading tuples."""
    found: dict[str, list[NewReading]] = {}
    for row in readings:
        value = row[_VALUE]
        found.setdefault(row[_DEVICE], []).append(
            NewReading(delivery_id, dedup_key, row[_TIME], row[_NAME], value, row[_STRING])
        )
    return found
