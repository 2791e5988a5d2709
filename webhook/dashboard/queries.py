"""What the dashboard reads: the fleet, one device's timeline, the fleet's hourly mix.

Why counts per hour come from two places: ``rollup.py`` folds deliveries into hourly rollups
once no commit below them can still be in flight (the watermark); everything newer is read from
``readings`` by delivery id and added here. So the answer is exact and current while the rows
scanned stay few: the rollup for the past, a minute or two of readings for the present. On
SQLite no rollup runs (an embedded store holds a demo's worth), the watermark stays 0 and the
same queries read ``readings`` alone.

Buckets are whole seconds since the Unix epoch divided by the bucket length, computed by the
database (``epoch_bucket``), so both dialects group the same way and the browser gets numbers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from lora_emotion.networks.kpn import EMOTION_NAME

from ..schema import (
    deliveries,
    devices,
    readings,
    rollup_device_hour,
    rollup_label_hour,
    rollup_state,
)
from ..storage import CONFIDENCE_NAME

__all__ = [
    "HOUR",
    "ROLLUP_NAME",
    "STATUS_MARKER",
    "DeviceRow",
    "Timeline",
    "device_timeline",
    "epoch_bucket",
    "fleet",
    "hourly_mix",
    "watermark",
]

HOUR = 3600
ROLLUP_NAME = "hourly"
#: Every status message (port 2) carries this reading; its newest row finds the newest status.
STATUS_MARKER = "firmwareVersion"
#: A device is silent after this many of its usual intervals without an uplink.
SILENCE_FACTOR = 3
#: ... and never sooner than this (a device that sent twice in a minute is not silent at once).
SILENCE_FLOOR_S = 600
DAY = 24 * HOUR


class epoch_bucket(FunctionElement[int]):
    """``floor(seconds since the epoch / size)`` of a UTC timestamp column, as an integer."""

    type = Integer()
    inherit_cache = True
    name = "epoch_bucket"


@compiles(epoch_bucket, "postgresql")
def _pg_bucket(element: epoch_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    column, size = list(element.clauses)
    return (
        f"floor(extract(epoch FROM {compiler.process(column, **kw)}) / "
        f"{compiler.process(size, **kw)})::bigint"
    )


@compiles(epoch_bucket, "sqlite")
def _sqlite_bucket(element: epoch_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    column, size = list(element.clauses)
    # The column holds naive UTC text, which strftime reads as UTC.
    return (
        f"(CAST(strftime('%s', {compiler.process(column, **kw)}) AS INTEGER) / "
        f"CAST({compiler.process(size, **kw)} AS INTEGER))"
    )


def watermark(conn: Connection) -> int:
    """The newest delivery id the rollups hold (0 if none: read everything from readings)."""
    value = conn.execute(
        select(rollup_state.c.watermark).where(rollup_state.c.name == ROLLUP_NAME)
    ).scalar()
    return int(value or 0)


@dataclass(slots=True)
class DeviceRow:
    """One line of the fleet page."""

    urn: str
    dev_eui: str | None
    first_seen: datetime
    last_seen: datetime | None
    emotion: str | None
    confidence: float | None
    emotion_time: datetime | None
    #: Emotion readings per hour over the last 24 h, oldest first, and their mean confidence.
    hourly_readings: list[int] = field(default_factory=list)
    hourly_confidence: list[float | None] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    status_time: datetime | None = None
    expected_interval_s: float | None = None
    silent: bool = False


_EMOTION_AND_CONFIDENCE: list[Any] = [
    literal_column(f"'{n}'") for n in (EMOTION_NAME, CONFIDENCE_NAME)
]


def _named(column: Any, name: str) -> Any:
    # A literal, not a parameter: the planner matches partial indexes against literals.
    return column == literal_column(f"'{name}'")


def _newest(column: str, name: str, label: str) -> Any:
    """One column of a device's newest reading called ``name``: one probe of a partial index
    that holds the value (an index-only scan on PostgreSQL)."""
    r = readings.alias(f"newest_{label}")
    return (
        select(getattr(r.c, column))
        .where(r.c.device == devices.c.urn, _named(r.c.name, name))
        # Time alone: the partial indexes are (device, time), so this is one probe, where a
        # tie-breaker on other columns would sort all of the device's rows.
        .order_by(r.c.time.desc())
        .limit(1)
        .scalar_subquery()
        .label(label)
    )


_FLEET = (
    select(
        devices.c.urn,
        devices.c.dev_eui,
        devices.c.first_seen,
        select(deliveries.c.received_at)
        .where(deliveries.c.device == devices.c.urn)
        .order_by(deliveries.c.id.desc())
        .limit(1)
        .scalar_subquery()
        .label("last_seen"),
        _newest("string_value", EMOTION_NAME, "emotion"),
        _newest("time", EMOTION_NAME, "emotion_time"),
        _newest("value", CONFIDENCE_NAME, "confidence"),
        _newest("delivery_id", STATUS_MARKER, "status_delivery"),
    )
    .order_by(devices.c.urn)
    .limit(bindparam("limit"))
)


def _readings_of(conn: Connection, ids: list[int], names: list[str] | None = None) -> list[Any]:
    """Readings of the deliveries ``ids`` (by the primary key)."""
    c = readings.c
    columns = (c.delivery_id, c.device, c.name, c.value, c.string_value, c.time)
    chunks: list[Any]
    if conn.dialect.name == "postgresql":
        # One array parameter: a list of hundreds of parameters costs more to send and parse
        # than the query takes to run.
        chunks = [c.delivery_id == func.any(cast(bindparam("ids", ids), ARRAY(BigInteger)))]
    else:
        chunks = [c.delivery_id.in_(ids[at : at + 500]) for at in range(0, len(ids), 500)]
    found: list[Any] = []
    for condition in chunks if ids else []:
        query = select(*columns).where(condition)
        if names is not None:
            query = query.where(c.name.in_(names))
        found.extend(conn.execute(query))
    return found


def fleet(conn: Connection, *, now: datetime | None = None, limit: int = 5_000) -> list[DeviceRow]:
    """Every device (up to ``limit``, in URN order) with what the fleet page shows.

    One statement with five index probes per device (newest delivery; the newest emotion
    reading's label and time and the newest confidence, which the partial index answers alone;
    the newest status), then that status message's readings by key, and the last 24 hours per
    hour (see :func:`_device_hours`).
    """
    now = now or datetime.now(UTC)
    rows = list(conn.execute(_FLEET, {"limit": limit}))
    statuses: dict[str, dict[str, Any]] = defaultdict(dict)
    status_times: dict[str, datetime] = {}
    status_ids = [r.status_delivery for r in rows if r.status_delivery is not None]
    for r in _readings_of(conn, status_ids):
        statuses[r.device][r.name] = r.string_value if r.value is None else r.value
        status_times[r.device] = r.time
    first_hour = int(now.timestamp()) // HOUR - 23
    per_device = _device_hours(conn, first_hour)
    empty: _Hours = ([0] * 24, [0.0] * 24, [0] * 24)
    result = []
    for r in rows:
        hourly, sums, confidences = per_device.get(r.urn, empty)
        total = sum(hourly)
        interval = DAY / total if total >= 2 else None
        limit_s = max(SILENCE_FACTOR * interval, SILENCE_FLOOR_S) if interval else DAY
        last = _aware(r.last_seen)
        result.append(
            DeviceRow(
                urn=r.urn,
                dev_eui=r.dev_eui,
                first_seen=r.first_seen,
                last_seen=last,
                emotion=r.emotion,
                confidence=r.confidence,
                emotion_time=_aware(r.emotion_time),
                hourly_readings=hourly,
                hourly_confidence=[
                    (total_c / n if n else None)
                    for total_c, n in zip(sums, confidences, strict=True)
                ],
                status=statuses.get(r.urn, {}),
                status_time=status_times.get(r.urn),
                expected_interval_s=interval,
                silent=last is None or (now - last).total_seconds() > limit_s,
            )
        )
    return result


def _aware(value: Any) -> datetime | None:
    # A scalar subquery's result skips the column type; SQLite gives the stored text.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: Per device: emotion readings, confidence sums and confidence counts of 24 hours.
_Hours = tuple[list[int], list[float], list[int]]


def _device_hours(conn: Connection, first_hour: int) -> dict[str, _Hours]:
    """Each device's emotion readings, confidence sum and count per hour, from ``first_hour``
    (seconds since the epoch / 3600) for 24 hours.

    From the rollup alone once it holds anything: the fleet page's bars are per hour, at most
    a rollup interval plus ``SETTLE_S`` behind, and the page adds live deliveries itself.
    Reading the readings past the watermark for every device would cost more than the page's
    whole budget at 1,000 deliveries/s. Before the first rollup (and always on SQLite) they
    come from ``readings``.
    """
    since = datetime.fromtimestamp(first_hour * HOUR, UTC)
    out: dict[str, _Hours] = {}

    def hours_of(device: str) -> _Hours:
        found = out.get(device)
        if found is None:
            found = out[device] = ([0] * 24, [0.0] * 24, [0] * 24)
        return found

    if watermark(conn):
        rolled = rollup_device_hour.c
        # One row per hour with its devices as arrays, in the key's (hour, device) order, so
        # nothing is sorted: 24,000 rows of a thousand devices cost more to fetch one by one
        # than the query takes.
        query = (
            select(
                rolled.hour,
                func.array_agg(rolled.device),
                func.array_agg(rolled.readings),
                func.array_agg(rolled.confidence_sum),
                func.array_agg(rolled.confidence_count),
            )
            .where(rolled.hour >= since)
            .group_by(rolled.hour)
        )
        for when, names, counts, sums, ns in conn.execute(query):
            slot = int(when.timestamp()) // HOUR - first_hour
            if not 0 <= slot < 24:
                continue
            for device, n, total, k in zip(names, counts, sums, ns, strict=True):
                hours = hours_of(device)
                hours[0][slot] += n
                hours[1][slot] += total
                hours[2][slot] += k
        return out
    c = readings.c
    bucket = epoch_bucket(c.time, HOUR).label("bucket")
    tail = (
        select(
            c.device,
            bucket,
            func.count().filter(c.name == EMOTION_NAME).label("n"),
            func.coalesce(func.sum(c.value).filter(c.name == CONFIDENCE_NAME), 0.0).label("s"),
            func.count(c.value).filter(c.name == CONFIDENCE_NAME).label("k"),
        )
        .where(c.name.in_([EMOTION_NAME, CONFIDENCE_NAME]), c.time >= since)
        .group_by(c.device, bucket)
    )
    for r in conn.execute(tail):
        slot = int(r.bucket) - first_hour
        if 0 <= slot < 24:
            hours = hours_of(r.device)
            hours[0][slot] += int(r.n)
            hours[1][slot] += float(r.s)
            hours[2][slot] += int(r.k)
    return out


def hourly_mix(
    conn: Connection, *, start: datetime, end: datetime
) -> tuple[list[int], dict[str, list[int]]]:
    """Emotion readings per label per hour of the whole fleet, ``start <= time < end``.

    Returns:
        The hours (seconds since the epoch, each hour's start) and, per label, the count in
        each of them.
    """
    first = int(start.timestamp()) // HOUR
    last = (int(end.timestamp()) - 1) // HOUR
    hours = list(range(first, last + 1))
    mix: dict[str, list[int]] = {}

    def add(label: str, hour: int, n: int) -> None:
        if first <= hour <= last:
            mix.setdefault(label, [0] * len(hours))[hour - first] += n

    mark = watermark(conn)
    if mark:
        rolled = rollup_label_hour.c
        for row in conn.execute(
            select(rolled.hour, rolled.label, rolled.readings).where(
                rolled.hour >= datetime.fromtimestamp(first * HOUR, UTC), rolled.hour < end
            )
        ):
            add(row.label, int(row.hour.timestamp()) // HOUR, row.readings)
    c = readings.c
    bucket = epoch_bucket(c.time, HOUR).label("bucket")
    for row in conn.execute(
        select(bucket, c.string_value, func.count().label("n"))
        .where(
            c.delivery_id > mark,
            c.name == EMOTION_NAME,
            c.string_value.is_not(None),
            c.time >= start,
            c.time < end,
        )
        .group_by(bucket, c.string_value)
    ):
        add(row.string_value, int(row.bucket), int(row.n))
    return [h * HOUR for h in hours], dict(sorted(mix.items()))


@dataclass(slots=True)
class Timeline:
    """One device over a range, in equal buckets.

    Attributes:
        start: the first bucket's start (seconds since the epoch).
        bucket_s: bucket length.
        times: each bucket's start.
        labels: per label, emotion readings in each bucket.
        dominant: the most frequent label of each bucket (None where there is none).
        confidence: mean confidence of each bucket.
        summaries: per ``count:<label>`` of window summaries, the sum in each bucket.
    """

    start: int
    bucket_s: int
    times: list[int]
    labels: dict[str, list[int]]
    dominant: list[str | None]
    confidence: list[float | None]
    summaries: dict[str, list[float]]


#: Bucket lengths a timeline may use: about 120-360 buckets for any range from 1 h to 30 d.
BUCKETS_S = (10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
TARGET_BUCKETS = 240


def bucket_for(span_s: float) -> int:
    """The bucket length that cuts ``span_s`` into about ``TARGET_BUCKETS`` buckets."""
    for size in BUCKETS_S:
        if span_s / size <= TARGET_BUCKETS * 1.5:
            return size
    return BUCKETS_S[-1]


def device_timeline(conn: Connection, *, device: str, start: datetime, end: datetime) -> Timeline:
    """Emotion per bucket (label counts, dominant label, confidence) and summary counts.

    Reads the device's emotion and confidence rows through the partial index
    ``ix_readings_emotion``, and its window-summary counts through the (device, time) index.
    """
    size = bucket_for((end - start).total_seconds())
    first = int(start.timestamp()) // size
    last = (int(end.timestamp()) - 1) // size
    n = last - first + 1
    c = readings.c
    bucket = epoch_bucket(c.time, size).label("bucket")
    labels: dict[str, list[int]] = {}
    conf_sum = [0.0] * n
    conf_n = [0] * n
    in_range = and_(c.device == device, c.time >= start, c.time < end)
    for row in conn.execute(
        select(
            bucket,
            c.name,
            c.string_value,
            func.count().label("n"),
            func.sum(c.value).label("s"),
            func.count(c.value).label("k"),
        )
        .where(
            in_range,
            c.name.in_(
                [literal_column(f"'{EMOTION_NAME}'"), literal_column(f"'{CONFIDENCE_NAME}'")]
            ),
        )
        .group_by(bucket, c.name, c.string_value)
    ):
        slot = int(row.bucket) - first
        if not 0 <= slot < n:
            continue
        if row.name == EMOTION_NAME and row.string_value is not None:
            labels.setdefault(row.string_value, [0] * n)[slot] += int(row.n)
        elif row.name == CONFIDENCE_NAME and row.k:
            conf_sum[slot] += float(row.s)
            conf_n[slot] += int(row.k)
    summaries: dict[str, list[float]] = {}
    for row in conn.execute(
        select(bucket, c.name, func.sum(c.value).label("s"))
        .where(in_range, c.name.like(literal_column("'count:%'")))
        .group_by(bucket, c.name)
    ):
        slot = int(row.bucket) - first
        if 0 <= slot < n and row.s is not None:
            summaries.setdefault(row.name.partition(":")[2], [0.0] * n)[slot] += float(row.s)
    dominant: list[str | None] = []
    for slot in range(n):
        best = max(labels, key=lambda label: labels[label][slot], default=None)
        dominant.append(best if best is not None and labels[best][slot] else None)
    return Timeline(
        start=first * size,
        bucket_s=size,
        times=[(first + i) * size for i in range(n)],
        labels=dict(sorted(labels.items())),
        dominant=dominant,
        confidence=[s / k if k else None for s, k in zip(conf_sum, conf_n, strict=True)],
        summaries=dict(sorted(summaries.items())),
    )


def default_range(span: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) of a named range ending now: ``1h``, ``6h``, ``24h``, ``7d`` or ``30d``."""
    spans = {"1h": 1, "6h": 6, "24h": 24, "7d": 7 * 24, "30d": 30 * 24}
    end = now or datetime.now(UTC)
    return end - timedelta(hours=spans[span]), end
