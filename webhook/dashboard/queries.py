"""What the dashboard reads: the fleet, one device's timeline, the fleet's hourly mix.

Why counts per hour come from two places: ``rollup.py`` folds deliveries into hourly rollups
once no commit below them can still be in flight (the watermark); everything newer is read from
``readings`` by delivery id and added here. So the answer is exact and current while the rows
scanned stay few: the rollup for the past, a minute or two of readings for the present. The
fleet page's newest facts per device come the same way, from the job's ``rollup_device_latest``
and the deliveries past its own watermark, which follows the newest id (``rollup.py`` says why
it need not wait). On SQLite no rollup runs (an embedded store holds a demo's worth), the
watermark stays 0 and the same queries read ``readings`` alone.

Buckets are whole seconds since the Unix epoch divided by the bucket length, computed by the
database (``epoch_bucket``), so both dialects group the same way and the browser gets numbers.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
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
    rollup_label_hour,
    rollup_state,
)
from ..storage import CONFIDENCE_NAME

__all__ = [
    "HOUR",
    "LATEST_JOINS",
    "LATEST_MERGED",
    "LATEST_NAME",
    "LATEST_TAIL",
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
#: The ``rollup_state`` row of ``rollup_device_latest``.
LATEST_NAME = "latest"
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


# PostgreSQL until the rollup job has filled ``rollup_device_latest`` (then
# :data:`_FLEET_LATEST`): the fleet in one statement and three index probes per device: its
# newest delivery; its newest two emotion-or-confidence rows from ``ix_readings_emotion``
# (index-only; a reading's emotion and confidence rows share its time, so they are nearly always
# the newest reading's pair), two result rows per device; its newest status message's id. The
# 24 hours are the rollup job's row per device.
_FLEET_PG = text(
    f"""
SELECT d.urn, d.dev_eui, d.first_seen, d.last_seen, d.status_delivery,
    n.name, n.string_value, n.value, n.time,
    day.first_hour, day.readings, day.confidence
FROM (
    SELECT urn, dev_eui, first_seen,
        (SELECT received_at FROM deliveries WHERE device = urn ORDER BY id DESC LIMIT 1)
            AS last_seen,
        (SELECT delivery_id FROM readings
            WHERE device = urn AND name = '{STATUS_MARKER}' ORDER BY time DESC LIMIT 1)
            AS status_delivery
    FROM devices ORDER BY urn LIMIT :limit
) AS d
LEFT JOIN LATERAL (
    SELECT name, string_value, value, time FROM readings
    WHERE device = d.urn AND name IN ('{EMOTION_NAME}', '{CONFIDENCE_NAME}')
    ORDER BY time DESC LIMIT 2
) AS n ON true
LEFT JOIN rollup_device_day AS day ON day.device = d.urn
ORDER BY d.urn, n.time DESC
"""
)

# The deliveries ``rollup_device_latest`` does not hold: ids past the ``latest`` row's
# watermark (``:mark``), and the ids below it the job did not see committed (``:gaps``, a
# transaction still in flight then, or an id never used). Per device, the newest of them by id
# (``seen``) and its newest emotion, confidence and status-marker readings by time (``newest``,
# one row per device and name; of equal times, the later delivery's). A scan of the newest ids
# through both primary keys: the job runs every second, so they are a second or two of
# deliveries. The device sorts bytewise: the order only groups rows, and it sorts faster than
# the collation's.
LATEST_TAIL = f"""
fresh AS (
    SELECT id, device, received_at FROM deliveries
    WHERE id > :mark OR id = ANY(CAST(:gaps AS bigint[]))
), seen AS (
    SELECT DISTINCT ON (device COLLATE "C") device, id, received_at FROM fresh
    ORDER BY device COLLATE "C", id DESC
), newest AS (
    SELECT DISTINCT ON (device COLLATE "C", name) device, name, string_value, value, time,
        delivery_id
    FROM readings
    WHERE (delivery_id > :mark OR delivery_id = ANY(CAST(:gaps AS bigint[])))
        AND name IN ('{EMOTION_NAME}', '{CONFIDENCE_NAME}', '{STATUS_MARKER}')
    ORDER BY device COLLATE "C", name, time DESC, delivery_id DESC
)"""
#: ``newest`` of :data:`LATEST_TAIL` by name beside a device (``{device}``): ``e`` emotion,
#: ``c`` confidence, ``f`` status marker.
LATEST_JOINS = f"""
LEFT JOIN newest AS e ON e.device = {{device}} AND e.name = '{EMOTION_NAME}'
LEFT JOIN newest AS c ON c.device = {{device}} AND c.name = '{CONFIDENCE_NAME}'
LEFT JOIN newest AS f ON f.device = {{device}} AND f.name = '{STATUS_MARKER}'"""


def _newer(alias: str, time: str) -> str:
    # Of equal times, the reading the row does not hold yet wins (the index probes of the other
    # path give either).
    return f"{alias}.time >= coalesce(l.{time}, '-infinity')"


_LATER = "s.id > coalesce(l.last_delivery_id, 0)"
#: Each column of ``rollup_device_latest`` for a device: its row ``l`` merged with ``seen``
#: (``s``) and ``newest`` (:data:`LATEST_JOINS`) of :data:`LATEST_TAIL`.
LATEST_MERGED = {
    column: f"CASE WHEN {newer} THEN {value} ELSE l.{column} END"
    for column, newer, value in (
        ("last_delivery_id", _LATER, "s.id"),
        ("last_seen", _LATER, "s.received_at"),
        ("emotion", _newer("e", "emotion_time"), "e.string_value"),
        ("emotion_time", _newer("e", "emotion_time"), "e.time"),
        ("confidence", _newer("c", "confidence_time"), "c.value"),
        ("confidence_time", _newer("c", "confidence_time"), "c.time"),
        ("status_delivery", _newer("f", "status_time"), "f.delivery_id"),
        ("status_time", _newer("f", "status_time"), "f.time"),
    )
}
_FLEET_COLUMNS = ("last_seen", "emotion", "emotion_time", "confidence", "status_delivery")

# PostgreSQL once the job has filled ``rollup_device_latest``: the fleet as the job's rows
# merged with what lies past them (:data:`LATEST_TAIL`), the 24 hours from the job's
# ``rollup_device_day``; no probe per device.
_FLEET_LATEST = text(
    f"""
WITH {LATEST_TAIL}
SELECT d.urn, d.dev_eui, d.first_seen,
    {", ".join(f"{LATEST_MERGED[c]} AS {c}" for c in _FLEET_COLUMNS)},
    day.first_hour, day.readings, day.confidence
FROM devices AS d
LEFT JOIN rollup_device_latest AS l ON l.device = d.urn
LEFT JOIN seen AS s ON s.device = d.urn
{LATEST_JOINS.format(device="d.urn")}
LEFT JOIN rollup_device_day AS day ON day.device = d.urn
ORDER BY d.urn LIMIT :limit
"""
)

#: A status message's readings by its delivery id, per engine. Rows of a committed delivery
#: never change and PostgreSQL never reuses an id, so a status read once is read from here.
_STATUSES: weakref.WeakKeyDictionary[Engine, dict[int, tuple[dict[str, Any], datetime]]] = (
    weakref.WeakKeyDictionary()
)
_STATUSES_KEPT = 20_000


def _statuses(conn: Connection, ids: list[int]) -> dict[int, tuple[dict[str, Any], datetime]]:
    """The readings (name to value) and time of the status messages ``ids``."""
    known = _STATUSES.setdefault(conn.engine, {})
    missing = [i for i in ids if i not in known]
    if missing:
        if len(known) + len(missing) > _STATUSES_KEPT:
            known.clear()
        read: dict[int, tuple[dict[str, Any], datetime]] = {}
        for r in _readings_of(conn, missing):
            values, _ = read.setdefault(r.delivery_id, ({}, r.time))
            values[r.name] = r.string_value if r.value is None else r.value
        known.update(read)
    return known


@dataclass(slots=True)
class _Fleet:
    """What one device's fleet row is made of, before the silence rule."""

    urn: str
    dev_eui: str | None
    first_seen: datetime
    last_seen: datetime | None
    emotion: str | None = None
    emotion_time: datetime | None = None
    confidence: float | None = None
    status: dict[str, Any] = field(default_factory=dict)
    status_time: datetime | None = None
    hours: _Hours | None = None
    #: The newest status message's delivery id (PostgreSQL: read by :func:`_statuses`).
    status_id: int | None = None


def _fleet_by_columns(conn: Connection, limit: int, urns: list[str] | None = None) -> list[_Fleet]:
    """The fleet rows from :data:`_FLEET` (a probe per column) and the status readings by key;
    of the devices ``urns`` only if given."""
    query = _FLEET
    if urns is not None:
        query = query.where(devices.c.urn.in_(urns))
    rows = list(conn.execute(query, {"limit": limit}))
    statuses: dict[str, dict[str, Any]] = defaultdict(dict)
    status_times: dict[str, datetime] = {}
    status_ids = [r.status_delivery for r in rows if r.status_delivery is not None]
    for r in _readings_of(conn, status_ids):
        statuses[r.device][r.name] = r.string_value if r.value is None else r.value
        status_times[r.device] = r.time
    return [
        _Fleet(
            urn=r.urn,
            dev_eui=r.dev_eui,
            first_seen=r.first_seen,
            last_seen=_aware(r.last_seen),
            emotion=r.emotion,
            emotion_time=_aware(r.emotion_time),
            confidence=r.confidence,
            status=statuses.get(r.urn, {}),
            status_time=status_times.get(r.urn),
        )
        for r in rows
    ]


def _fleet_probed(conn: Connection, limit: int, first_hour: int | None) -> dict[str, _Fleet]:
    """The fleet rows from :data:`_FLEET_PG`, with the rollup's hours from ``first_hour`` if
    given."""
    found: dict[str, _Fleet] = {}
    names: dict[str, set[str]] = {}
    # Fetched at once and unpacked: row-at-a-time fetching and attribute access cost more
    # than the statement's probes on a busy machine. psycopg gives aware datetimes.
    for (
        urn,
        dev_eui,
        first_seen,
        last_seen,
        status_id,
        name,
        label,
        value,
        at,
        start,
        counts,
        means,
    ) in conn.execute(_FLEET_PG, {"limit": limit}).all():
        row = found.get(urn)
        if row is None:
            row = found[urn] = _Fleet(
                urn=urn,
                dev_eui=dev_eui,
                first_seen=first_seen,
                last_seen=last_seen,
                status_id=status_id,
            )
            names[urn] = set()
            if first_hour is not None:
                row.hours = _day_hours(start, counts, means, first_hour)
        if name is None or name in names[urn]:
            continue
        names[urn].add(name)
        if name == EMOTION_NAME:
            row.emotion, row.emotion_time = label, at
        else:
            row.confidence = value
    # Both rows of one name: the other name's newest row is older than both (or absent), so
    # those devices (a reading without confidence, say) take the per-column probes.
    unsure = [urn for urn, seen in names.items() if len(seen) == 1]
    if unsure:
        for again in _fleet_by_columns(conn, limit, unsure):
            row = found[again.urn]
            row.emotion, row.emotion_time = again.emotion, again.emotion_time
            row.confidence = again.confidence
    return found


def _fleet_latest(
    conn: Connection, limit: int, mark: int, gaps: list[int], first_hour: int | None
) -> dict[str, _Fleet]:
    """The fleet rows from :data:`_FLEET_LATEST` (the job's rows merged with the deliveries
    past ``mark`` and in ``gaps``), as :func:`_fleet_probed` gives them."""
    found: dict[str, _Fleet] = {}
    for (
        urn,
        dev_eui,
        first_seen,
        last_seen,
        emotion,
        emotion_time,
        confidence,
        status_id,
        start,
        counts,
        means,
    ) in conn.execute(_FLEET_LATEST, {"limit": limit, "mark": mark, "gaps": gaps}).all():
        found[urn] = _Fleet(
            urn=urn,
            dev_eui=dev_eui,
            first_seen=first_seen,
            last_seen=last_seen,
            emotion=emotion,
            emotion_time=emotion_time,
            confidence=confidence,
            status_id=status_id,
            hours=None if first_hour is None else _day_hours(start, counts, means, first_hour),
        )
    return found


#: Past this many delivery ids per device beyond the job's newest facts (the job has stopped,
#: say), reading them costs more than probing each device (measured on 1,000 devices: 4,000
#: ids 33 ms, 8,000 95 ms, the probes 61 ms), so the page probes.
TAIL_PER_DEVICE = 4
_STATE = text(
    f"""
SELECT name, watermark, gaps, (SELECT coalesce(max(id), 0) FROM deliveries) AS newest,
    (SELECT count(*) FROM devices) AS devices
FROM rollup_state WHERE name IN ('{ROLLUP_NAME}', '{LATEST_NAME}')
"""
)


def _fleet_postgresql(conn: Connection, limit: int, first_hour: int) -> list[_Fleet]:
    """The fleet rows, with the rollup's hours once it holds any: from the rollup job's rows
    per device once it has filled them and while it keeps them current, else by probes per
    device.

    The job's state is read in a statement of its own, before the fleet's: a run that commits
    in between has folded deliveries that the fleet's statement then also reads past the older
    watermark or in the older gaps, and a device's newest facts are the same either way."""
    state = {row.name: row for row in conn.execute(_STATE)}
    hourly, latest = state.get(ROLLUP_NAME), state.get(LATEST_NAME)
    hours_from = first_hour if hourly is not None and hourly.watermark > 0 else None
    gaps = orjson.loads(latest.gaps or "[]") if latest is not None else []
    if latest is not None and (
        latest.newest - latest.watermark + len(gaps) <= TAIL_PER_DEVICE * latest.devices
    ):
        found = _fleet_latest(conn, limit, latest.watermark, gaps, hours_from)
    else:
        found = _fleet_probed(conn, limit, hours_from)
    status_of = {r.urn: r.status_id for r in found.values() if r.status_id is not None}
    statuses = _statuses(conn, list(status_of.values()))
    for urn, status_id in status_of.items():
        found[urn].status, found[urn].status_time = statuses[status_id]
    return list(found.values())


def fleet(conn: Connection, *, now: datetime | None = None, limit: int = 5_000) -> list[DeviceRow]:
    """Every device (up to ``limit``, in URN order) with what the fleet page shows.

    On PostgreSQL one statement: the rollup job's newest facts per device and the deliveries
    past them (:data:`_FLEET_LATEST`), or until the job has kept those, a few probes per device
    (:data:`_FLEET_PG`); elsewhere one statement with a probe per column. Then the newest
    status message's readings by key. The last 24 hours per hour come from the rollup job's
    row per device once it has run, else from ``readings`` (see :func:`_device_hours`).
    """
    now = now or datetime.now(UTC)
    first_hour = int(now.timestamp()) // HOUR - 23
    if conn.dialect.name == "postgresql":
        rows = _fleet_postgresql(conn, limit, first_hour)
    else:
        rows = _fleet_by_columns(conn, limit)
    per_device = {} if all(r.hours is not None for r in rows) else _device_hours(conn, first_hour)
    result = []
    for r in rows:
        hourly, confidence = r.hours or per_device.get(r.urn) or ([0] * 24, [None] * 24)
        total = sum(hourly)
        interval = DAY / total if total >= 2 else None
        limit_s = max(SILENCE_FACTOR * interval, SILENCE_FLOOR_S) if interval else DAY
        last = r.last_seen
        result.append(
            DeviceRow(
                urn=r.urn,
                dev_eui=r.dev_eui,
                first_seen=r.first_seen,
                last_seen=last,
                emotion=r.emotion,
                confidence=r.confidence,
                emotion_time=r.emotion_time,
                hourly_readings=hourly,
                hourly_confidence=confidence,
                status=r.status,
                status_time=r.status_time,
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


#: Per device: emotion readings and mean confidence (None where none) of 24 hours.
_Hours = tuple[list[int], list[float | None]]


def _shifted(values: list[Any], by: int, empty: Any) -> list[Any]:
    """``values`` of 24 hours, moved to start ``by`` hours later; hours not held are ``empty``."""
    if by >= 0:
        return values[by:24] + [empty] * min(by, 24)
    return [empty] * min(-by, 24) + values[: max(24 + by, 0)]


def _day_hours(start: int | None, counts: str | None, means: str | None, first_hour: int) -> _Hours:
    """A device's 24 hours from ``first_hour`` out of its ``rollup_device_day`` row (none: no
    hours folded). A window that starts earlier (nothing was folded for the device since the
    hour moved on) is shifted; the hours after it are empty."""
    if start is None or counts is None or means is None:
        return [0] * 24, [None] * 24
    hourly, confidence = orjson.loads(counts), orjson.loads(means)
    by = first_hour - int(start)
    if by:
        hourly, confidence = _shifted(hourly, by, 0), _shifted(confidence, by, None)
    return hourly, confidence


def _device_hours(conn: Connection, first_hour: int) -> dict[str, _Hours]:
    """Each device's emotion readings and mean confidence per hour, from ``first_hour``
    (seconds since the epoch / 3600) for 24 hours, from ``readings``: before the rollup job's
    first run on PostgreSQL, and always on SQLite (no job runs there).

    Once the job has run, the fleet page's bars are its rows (``rollup_device_day``): per
    hour, at most a rollup interval plus ``SETTLE_S`` behind, and the page adds live deliveries
    itself. Reading the readings past the watermark for every device would cost more than the
    page's whole budget at 1,000 deliveries/s.
    """
    out: dict[str, _Hours] = {}
    since = datetime.fromtimestamp(first_hour * HOUR, UTC)
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
            hourly, confidence = out.setdefault(r.device, ([0] * 24, [None] * 24))
            hourly[slot] = int(r.n)
            confidence[slot] = float(r.s) / int(r.k) if r.k else None
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
