"""The relay's rules in Python: the sans-IO twin of ``arduino/.../LoraEmotionRelay.cpp``.

The simulator runs this instead of the sketch, so it must decide what the sketch decides, given
the same frames at the same times. It follows the C++ core step by step (the names of the C++
members are kept where they help a side-by-side reading); docs/arduino.md states the rules:

* Rule 1 (input): readings arrive as relay-protocol frames or one-byte legacy transactions. A
  distribution counts as a reading of its argmax (after quantising to whole percent), each face
  of a faces frame as a reading, an empty faces frame as "no face", a vitals frame adds to the
  vitals means and, with a prediction, a reading. Frames of another label set are dropped and
  counted; labels out of range are counted as invalid.
* Rule 2 (one window, growing until sent): readings add to one window. When ``window_s`` has
  passed and the window holds something, a window message is due; until it is actually sent
  (pacer, ledger, off-time), the window keeps growing, so the budget never loses a reading.
  A window with nothing in it restarts at the current second. The message is built from the
  window as it is when sent: a summary, the mean distribution, the vitals means with the
  dominant reading, or the dominant reading (highest count, lowest index on ties, "no face"
  only when no class was counted), confidences as rounded-half-up integer means.
* Rule 3 (changes): three readings in a row of one class that differs from the class the last
  uplink reported make a "change" reading due. At most one change goes out per window: a
  further change waits for the window, which reports it (a window whose dominant class is the
  change's clears it; otherwise it is the first change of the next window).
* Rule 4 (priorities): status (after a join, and every ``status_interval_min``), then the
  window's first change, then window. At most one decision per second of uptime, one uplink
  per decision. Without the one-change limit a noisy classifier makes a change every few
  seconds; at SF12 each costs less pacer credit than a window needs, so the credit never
  reached a window's threshold and the window filled up and dropped readings.
* Rule 5 (the budget): an uplink needs, in order, the end of the radio's off-time (100 x the
  last airtime since its start), pacer credit, and room in the ledger (1 % per hour, the
  daily cap per 24 h; when its ring is full it merges its two oldest entries). The pacer holds
  seconds of credit, at most 3 h, one per second of uptime; an uplink costs its share of the
  daily cap in seconds, and a window message also needs the cost of one prompt change
  reading in reserve.
* Rule 6 (joining): the first decision is an OTAA join, charged to the ledger as a 23-byte
  join request at SF12; a successful join makes a status message due.

* Rule 7 (commands): a downlink on FPort 3 is a sequence number and commands; all of them
  apply or none does, and the next status message (due at once) acknowledges the outcome. A
  new label set empties the window (its counts are per class index of the old set).

The simulated network accepts every uplink at once (``endPacket`` returning the length), so the
retry and rejoin paths of the sketch are not modelled here. ``tests/test_aggregator.py`` holds
this module to the C++ core by running both on the same input (``tests/relay_twin``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._relay_parts import DEFAULT_LEDGER_CAPACITY as DEFAULT_LEDGER_CAPACITY
from ._relay_parts import UINT32, WINDOW_MAX_S, Window, make_reading, rounded_mean
from ._relay_parts import DeviceLedger as DeviceLedger
from ._relay_parts import pacer_cost as pacer_cost
from .airtime import time_on_air_us
from .budget import airtime_charge_ms
from .errors import DecodeError, EncodeError
from .labels import DEFAULT_REGISTRY, FER2013, LabelRegistry, LabelSet
from .messages import (
    CommandStatus,
    Message,
    Mode,
    Reading,
    Status,
    decode,
    encode,
    port_of,
)
from .relay_protocol import (
    DistributionFrame,
    FacesFrame,
    Frame,
    LegacyByte,
    ReadingFrame,
    VitalsFrame,
    distribution_frame,
    maybe_next_frame,
    quantise_weights,
    reading_frame,
)

__all__ = [
    "DEFAULT_LEDGER_CAPACITY",
    "PACER_BURST_S",
    "Aggregator",
    "DeviceLedger",
    "RelayConfig",
    "Uplink",
    "pacer_cost",
]

#: Relay::kPacerBurstS: the pacer holds at most 3 h of the daily allowance.
PACER_BURST_S = 10_800
#: Relay::kChangeStreak.
CHANGE_STREAK = 3
#: The firmware version the sketch reports (kFirmwareVersion).
FIRMWARE = (1, 0, 0)
_NO_READING = -1
#: Argument bytes of each downlink opcode (Relay::downlink's kArgumentBytes).
_ARGUMENT_BYTES = {1: 2, 2: 1, 3: 2, 4: 4, 5: 0, 6: 2}
COMMAND_PORT = 3
# A join request is 23 bytes; the relay charges every attempt at SF12, the worst case.
#: The ledger's hour and day are this much longer (Relay::kTransmitSlackMs): an uplink is
#: charged when planned and goes on the air up to a few seconds later.
TRANSMIT_SLACK_MS = 60_000
_JOIN_CHARGE_MS = (time_on_air_us(23, sf=12, bandwidth_khz=125, header_overhead=0) + 999) // 1000


def _data_rate(dr: int) -> tuple[int, int]:
    # RP002-1.0.3 §2.4.3: DR0..DR5 are SF12..SF7 at 125 kHz, DR6 is SF7 at 250 kHz.
    return (7, 250) if dr == 6 else (12 - dr, 125)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    """The relay's settings (the sketch's Config plus what the simulator must fix).

    Attributes:
        label_set: the classes the host model predicts (at most 16 classes on the relay).
        mode: what a window becomes.
        window_s: window length, 1..65536 s.
        daily_budget_s: the daily airtime cap, 1..1024 s.
        status_interval_min: minutes between status messages, 1..65535; 0 is a simulator
            extension meaning "only after joining".
        data_rate: EU868 DR0..DR6 the network keeps the relay at (ADR is not modelled).
        budget: False switches Rule 5 off: load generation only, no device can.
        join: model the OTAA join (its airtime and the status that follows it).
        ledger_capacity: the ledger ring's entries (LORA_EMOTION_LEDGER_CAPACITY).
        registry: the label sets a downlink may switch to (the sketch takes any set by id,
            class count and fingerprint; the simulator needs the class names too).

    Raises:
        EncodeError: a setting out of range (the field names it).
    """

    label_set: LabelSet = FER2013
    mode: Mode = Mode.SUMMARY
    window_s: int = 60
    daily_budget_s: int = 30
    status_interval_min: int = 360
    data_rate: int = 5
    budget: bool = True
    join: bool = True
    ledger_capacity: int = DEFAULT_LEDGER_CAPACITY
    registry: LabelRegistry = DEFAULT_REGISTRY

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))

        def check(name: str, low: int, high: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise EncodeError(f"must be an integer {low}..{high}", field=name)

        check("window_s", 1, WINDOW_MAX_S)
        check("daily_budget_s", 1, 1024)
        check("status_interval_min", 0, 65_535)
        check("data_rate", 0, 6)
        check("ledger_capacity", 2, 4096)
        if len(self.label_set) > 16:
            raise EncodeError("the relay keeps sums for at most 16 classes", field="label_set")

    @property
    def sf(self) -> int:
        return _data_rate(self.data_rate)[0]

    @property
    def bandwidth_khz(self) -> int:
        return _data_rate(self.data_rate)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Uplink:
    """One message the relay transmits.

    Attributes:
        t_ms: when it was sent (relay clock).
        kind: ``status``, ``change`` or ``window`` (the sketch's UplinkKind).
        message: the message as the network decodes it.
        fport: its port.
        payload: its bytes.
        airtime_ms: what the ledger was charged.
        readings: how many readings the window it closes held (0 for status and change).
    """

    t_ms: int
    kind: str
    message: Message
    fport: int
    payload: bytes
    airtime_ms: int
    readings: int


class Aggregator:
    """The relay between the host model and the radio (see the module's rules).

    Feed it frames (:meth:`handle_frame`, or the :meth:`add_reading`, :meth:`add_distribution`
    and :meth:`add_vitals` shortcuts), then call :meth:`poll` with the current time, as the
    sketch's ``loop()`` does: it returns the uplink to transmit now, if any. Time is the
    caller's (``now_ms``, as ``millis()``) and must not go backwards.

    Args:
        config: the relay's settings.
        boot_ms: the relay clock at boot.
    """

    def __init__(self, config: RelayConfig | None = None, *, boot_ms: int = 0) -> None:
        self.config = cfg = config or RelayConfig()
        # The settings downlink commands change (the sketch's Config), starting from config.
        self.label_set = cfg.label_set
        self.mode = cfg.mode
        self.window_s = cfg.window_s
        self.daily_budget_s = cfg.daily_budget_s
        self.status_interval_min = cfg.status_interval_min
        self.command_seq = 0
        self.command_status = CommandStatus.NONE
        self._classes = len(cfg.label_set)
        self._serial = bytearray()
        self._window = Window(self._classes)
        self._window.reset(0)
        self.ledger = DeviceLedger(
            duty_cycle_window_ms=3_600_000 + TRANSMIT_SLACK_MS,
            daily_cap_ms=cfg.daily_budget_s * 1000,
            daily_window_ms=86_400_000 + TRANSMIT_SLACK_MS,
            capacity=cfg.ledger_capacity,
        )
        self._last_ms = boot_ms
        self._carry_ms = 0
        self.uptime_s = 0
        self.credit_s = PACER_BURST_S
        self._last_plan_s: int | None = None
        # Without a join the relay starts as if it had just joined: a status message is due.
        self._joined = not (cfg.join and cfg.budget)
        self._next_join_s = 0
        self._status_due = True
        self._last_status_s = 0
        self._off_start_ms = boot_ms
        self._off_length_ms = 0
        # _NO_READING stands for the sketch's kNoReading: no label yet (None is "no face").
        self._streak_label: int | None = _NO_READING
        self._streak_length = 0
        self._streak_confidence_sum = 0
        self._streak_confidence_n = 0
        self._reported_label: int | None = _NO_READING
        self._change_pending = False
        self._change_label = 0
        self._change_confidence = 0
        self._window_had_change = False
        #: Readings added to a window.
        self.received = 0
        #: Readings that never reached a window (wrong label set, full window).
        self.dropped = 0
        #: Frames refused as invalid (labels out of range).
        self.invalid = 0
        #: Uplinks sent, the airtime charged for them, and for joins.
        self.sent = 0
        self.airtime_ms = 0
        self.join_airtime_ms = 0

    # -- clock ------------------------------------------------------------------------------

    def _tick(self, now_ms: int) -> None:
        if now_ms < self._last_ms:
            raise EncodeError(
                f"time went backwards: {now_ms} after {self._last_ms}", field="now_ms"
            )
        total = self._carry_ms + (now_ms - self._last_ms)
        self._last_ms = now_ms
        seconds, self._carry_ms = divmod(total, 1000)
        self.uptime_s += seconds
        self.credit_s = min(PACER_BURST_S, self.credit_s + seconds)

    # -- input ------------------------------------------------------------------------------

    def handle_frame(self, now_ms: int, frame: Frame | LegacyByte) -> None:
        """Take one frame from I2C or serial, as Relay::handle_frame does.

        Raises:
            EncodeError: time going backwards.
        """
        self._tick(now_ms)
        label_set = self.label_set
        classes = self._classes
        if isinstance(frame, LegacyByte):
            if frame.value > classes:
                self.invalid += 1
                return
            frame = ReadingFrame(
                label_set=label_set.id, label=None if frame.value == classes else frame.value
            )
        readings = 1
        if isinstance(frame, FacesFrame) and len(frame.faces) > 1:
            readings = len(frame.faces)
        if isinstance(frame, VitalsFrame) and frame.prediction is None:
            readings = 0
        if frame.label_set != label_set.id:
            self.dropped += readings
            return
        if isinstance(frame, DistributionFrame):
            if len(frame.weights) != classes:
                self.invalid += 1
                return
            percent = quantise_weights(frame.weights)
            best = max(range(classes), key=lambda i: (percent[i], -i))
            self._add(best, percent[best], percent)
            return
        if isinstance(frame, FacesFrame):
            if any(face.label >= classes for face in frame.faces):
                self.invalid += 1
                return
            if not frame.faces:
                self._add(None, None, None)
            for face in frame.faces:
                self._add(face.label, face.confidence_pct, None)
            return
        if isinstance(frame, VitalsFrame):
            prediction = frame.prediction
            if (
                prediction is not None
                and prediction.label is not None
                and prediction.label >= classes
            ):
                self.invalid += 1
                return
            self._window.add_vitals(frame.heart_rate_bpm, frame.skin_conductance_centi_us)
            if prediction is not None:
                self._add(prediction.label, prediction.confidence_pct, None)
            return
        if frame.label is not None and frame.label >= classes:
            self.invalid += 1
            return
        self._add(frame.label, frame.confidence_pct, None)

    def serial_bytes(self, now_ms: int, data: bytes) -> None:
        """Bytes from the USB serial port, as Relay::serial_byte takes them one at a time.

        Frames are cut out of the stream with ``relay_protocol.maybe_next_frame``; a bad frame
        (length, checksum, type or payload) is counted as invalid and the stream goes on.
        """
        self._tick(now_ms)
        buffer = self._serial
        for byte in data:
            buffer.append(byte)
            while True:
                try:
                    frame = maybe_next_frame(buffer)
                except DecodeError:
                    self.invalid += 1
                    continue
                if frame is None:
                    break
                self.handle_frame(now_ms, frame)

    def _add(
        self, label: int | None, confidence: int | None, percent: Sequence[int] | None
    ) -> None:
        if not self._window.add(label, confidence, percent):
            self.dropped += 1
            return
        self.received += 1
        if label != self._streak_label:
            self._streak_label = label
            self._streak_length = 0
            self._streak_confidence_sum = 0
            self._streak_confidence_n = 0
        # Only the first CHANGE_STREAK readings of a streak matter: the last of them makes the
        # change.
        if self._streak_length == CHANGE_STREAK:
            return
        self._streak_length += 1
        if confidence is not None:
            self._streak_confidence_sum += confidence
            self._streak_confidence_n += 1
        if (
            self._streak_length == CHANGE_STREAK
            and label is not None
            and label != self._reported_label
        ):
            self._change_pending = True
            self._change_label = label
            n = self._streak_confidence_n
            self._change_confidence = rounded_mean(self._streak_confidence_sum, n) if n else 0

    def add_reading(self, now_ms: int, label: str | None, confidence: float | None = None) -> None:
        """A reading frame: a class name with an optional confidence in [0, 1], or no face.

        Raises:
            EncodeError: an unknown label or a confidence out of range.
        """
        self.handle_frame(now_ms, reading_frame(self.label_set, label, confidence))

    def add_distribution(self, now_ms: int, probabilities: Sequence[float]) -> None:
        """A distribution frame (weights in 1/10000, as ``feed`` sends them).

        Raises:
            EncodeError: the wrong number of values, or a value outside [0, 1].
        """
        self.handle_frame(now_ms, distribution_frame(self.label_set, probabilities))

    def add_vitals(
        self, now_ms: int, heart_rate_bpm: int | None, skin_conductance_us: float | None
    ) -> None:
        """A vitals frame without a prediction."""
        if heart_rate_bpm is None and skin_conductance_us is None:
            return
        self.handle_frame(
            now_ms,
            VitalsFrame(
                label_set=self.label_set.id,
                heart_rate_bpm=None if heart_rate_bpm is None else min(max(heart_rate_bpm, 0), 250),
                skin_conductance_centi_us=None
                if skin_conductance_us is None
                else min(round(skin_conductance_us * 100), 10_000),
            ),
        )

    # -- output -----------------------------------------------------------------------------

    def status(self) -> Status:
        """The status message the relay would send now."""
        return Status(
            firmware=FIRMWARE,
            battery_percent=None,
            uptime_s=self.uptime_s,
            dropped=min(self.dropped + self.invalid, 65_535),
            window_s=self.window_s,
            mode=self.mode,
            daily_budget_s=self.daily_budget_s,
            label_set_id=self.label_set.id,
            label_set_fingerprint=self.label_set.fingerprint,
            command_seq=self.command_seq,
            command_status=self.command_status,
        )

    def _due(self) -> str | None:
        interval = self.status_interval_min
        if interval and self.uptime_s - self._last_status_s >= 60 * interval:
            self._status_due = True
        if self._status_due:
            return "status"
        if self._change_pending and not self._window_had_change:
            return "change"
        if self.uptime_s - self._window.start_s >= self.window_s:
            if self._window.has_content(self.mode):
                return "window"
            self._restart_window()
        return None

    def _restart_window(self) -> None:
        self._window.reset(self.uptime_s)
        self._window_had_change = False

    def _build(self, kind: str) -> Message:
        if kind == "status":
            return self.status()
        if kind == "change":
            return make_reading(self.label_set, self._change_label, self._change_confidence)
        return self._window.build(self.label_set, self.mode, self.uptime_s)

    def poll(self, now_ms: int) -> list[Uplink]:
        """Decide, at most once per second of uptime, whether to send; the uplink if so.

        Raises:
            EncodeError: time going backwards.
        """
        self._tick(now_ms)
        if self.uptime_s == self._last_plan_s:
            return []
        self._last_plan_s = self.uptime_s
        cfg = self.config
        if not self._joined:
            if self.uptime_s < self._next_join_s:
                return []
            if (now_ms - self._off_start_ms) & UINT32 < self._off_length_ms:
                return []  # a join request waits for the off-time like any transmission
            if not self.ledger.try_record(now_ms, _JOIN_CHARGE_MS):
                self._next_join_s = self.uptime_s + 60
                return []
            # The simulated network accepts the join at once.
            self.join_airtime_ms += _JOIN_CHARGE_MS
            self._off_start_ms = now_ms
            self._off_length_ms = 100 * _JOIN_CHARGE_MS
            self._joined = True
            self._status_due = True
            return []
        kind = self._due()
        if kind is None:
            return []
        message = self._build(kind)
        payload = encode(message)
        airtime = airtime_charge_ms(len(payload), sf=cfg.sf, bandwidth_khz=cfg.bandwidth_khz)
        if cfg.budget:
            if (now_ms - self._off_start_ms) & UINT32 < self._off_length_ms:
                return []
            cost = pacer_cost(airtime, daily_budget_s=self.daily_budget_s)
            need = cost
            if kind == "window":
                reading_size = len(encode(Reading(label_set=self.label_set, label=None)))
                reading_airtime = airtime_charge_ms(
                    reading_size, sf=cfg.sf, bandwidth_khz=cfg.bandwidth_khz
                )
                need += pacer_cost(reading_airtime, daily_budget_s=self.daily_budget_s)
            if self.credit_s < min(need, PACER_BURST_S):
                return []
            if not self.ledger.try_record(now_ms, airtime):
                return []
            self.credit_s -= cost
            self._off_start_ms = now_ms
            self._off_length_ms = 100 * airtime
        return [self._sent(now_ms, kind, message, payload, airtime)]

    def _sent(
        self, now_ms: int, kind: str, message: Message, payload: bytes, airtime: int
    ) -> Uplink:
        """Relay::uplink_result for a delivered uplink."""
        readings = 0
        if kind == "status":
            self._status_due = False
            self._last_status_s = self.uptime_s
        elif kind == "change":
            self._change_pending = False
            self._reported_label = self._change_label
            self._window_had_change = True
        else:
            readings = self._window.total
            self._reported_label = self._window.dominant()
            if self._change_label == self._reported_label:
                self._change_pending = False
            self._restart_window()
        self.sent += 1
        self.airtime_ms += airtime
        fport = port_of(message)
        return Uplink(
            t_ms=now_ms,
            kind=kind,
            message=decode(
                payload, fport=fport, registry=LabelRegistry({self.label_set.id: self.label_set})
            ),
            fport=fport,
            payload=payload,
            airtime_ms=airtime,
            readings=readings,
        )

    def downlink(self, now_ms: int, port: int | None, data: bytes) -> CommandStatus | None:
        """Take a downlink as Relay::downlink does: commands on FPort 3, all or none.

        Args:
            now_ms: when it arrived (right after an uplink, in class A).
            port: its FPort, or None when the modem library cannot tell.
            data: sequence number, then opcodes with their arguments (docs/downlink.md).

        Returns:
            The outcome the next status message reports, or None for a downlink that is not
            a command (another port, or empty).
        """
        self._tick(now_ms)
        if not (port is None or port == COMMAND_PORT) or not data:
            return None
        staged = {
            "window_s": self.window_s,
            "mode": self.mode,
            "daily_budget_s": self.daily_budget_s,
            "status_interval_min": self.status_interval_min,
        }
        wanted = self.label_set
        result = CommandStatus.APPLIED
        i = 1
        while i < len(data) and result is CommandStatus.APPLIED:
            opcode = data[i]
            size = _ARGUMENT_BYTES.get(opcode)
            if size is None or i + 1 + size > len(data):
                result = CommandStatus.UNKNOWN_COMMAND
                break
            args = data[i + 1 : i + 1 + size]
            value = int.from_bytes(args[:2], "big") if size else 0
            if opcode == 1:
                staged["window_s"] = value + 1
            elif opcode == 2:
                if value > 3:
                    result = CommandStatus.REJECTED
                else:
                    staged["mode"] = Mode(value)
            elif opcode == 3:
                if value > 1023:
                    result = CommandStatus.REJECTED
                staged["daily_budget_s"] = value + 1
            elif opcode == 4:
                found = self.config.registry.get(args[0])
                fingerprint = int.from_bytes(args[2:4], "big")
                if (
                    found is None
                    or not 2 <= args[1] <= 16
                    or len(found) != args[1]
                    or found.fingerprint != fingerprint
                ):
                    result = CommandStatus.REJECTED
                else:
                    wanted = found
            elif opcode == 6:
                if value == 0:
                    result = CommandStatus.REJECTED
                staged["status_interval_min"] = value
            i += 1 + size
        if result is CommandStatus.APPLIED:
            self.window_s = int(staged["window_s"])
            self.mode = Mode(staged["mode"])
            self.daily_budget_s = int(staged["daily_budget_s"])
            self.status_interval_min = int(staged["status_interval_min"])
            if wanted != self.label_set:
                self._apply_label_set(wanted)
            self.ledger.daily_cap_ms = 1000 * self.daily_budget_s
        self.command_seq = data[0]
        self.command_status = result
        self._status_due = True
        return result

    def _apply_label_set(self, label_set: LabelSet) -> None:
        # Counts are per class index of the old set: they cannot be carried over.
        self.dropped += self._window.total
        self.label_set = label_set
        self._classes = len(label_set)
        self._window = Window(self._classes)
        self._restart_window()
        self._streak_label = _NO_READING
        self._streak_length = 0
        self._reported_label = _NO_READING
        self._change_pending = False

    @property
    def pending_readings(self) -> int:
        """Readings in the open window, not yet sent."""
        return self._window.total
