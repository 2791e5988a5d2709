"""The fleet page's fast path against a straightforward computation, on both stores.

``queries.fleet`` reads each device's 24 hours from the rollup job's one row per device on
PostgreSQL (and from ``readings`` before the first rollup and on SQLite). Here the same page is
computed the plain way, from every stored reading in Python, and the two must agree: after the
job has folded everything, with deliveries past its watermark, an hour later than the job's
windows (shifted), and after the job rebuilt the windows for that hour.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from conftest import Deliver
from lora_emotion.webhook.dashboard import queries
from lora_emotion.webhook.dashboard.rollup import fold, update_device_days
from lora_emotion.webhook.migrations import migrate
from lora_emotion.webhook.schema import (
    deliveries,
    devices,
    readings,
    rollup_device_day,
    rollup_device_hour,
    rollup_device_latest,
    rollup_state,
)
from lora_emotion.webhook.storage import Store
from sqlalchemy import Connection, delete, func, insert, select, text
from webhook_support import THINGSML_HAPPY, payload_body

HOUR = 3600
#: A relay's status message on port 2 (firmware 1.0.0), from tests/vectors/messages.json.
STATUS = "0028A400000000000001650AE0000000"
EUIS = ["0004A30B00F00001", "0004A30B00F00002", "0004A30B00F00003", "0004A30B00F00004"]


def _reading(label_index: int, confidence: int) -> str:
    # FER-2013 on port 16: index * 101 + confidence in percent, two bytes.
    return f"{label_index * 101 + confidence:04X}"


def _fill(deliver: Deliver, now: float) -> None:
    """Three devices over the last 30 hours: two busy ones with a status message, and one
    with readings of more than a day ago only (no bars), and one whose newest readings carry
    no confidence (so its newest confidence is older than its two newest emotion rows)."""
    pick = random.Random(14)
    times = sorted(pick.sample(range(60, 30 * HOUR), 30))
    for n, ago in enumerate(times):
        eui = EUIS[n % 2]
        body = payload_body(
            _reading(pick.randrange(7), pick.randrange(30, 100)),
            16,
            base_time=now - ago,
            dev_eui=eui,
        )
        assert deliver(body).status_code == 200
    for eui, ago in ((EUIS[0], 3 * HOUR + 17), (EUIS[1], 26 * HOUR)):
        assert deliver(payload_body(STATUS, 2, base_time=now - ago, dev_eui=eui)).status_code == 200
    for ago in (29 * HOUR, 28 * HOUR):
        body = payload_body(_reading(3, 55), 16, base_time=now - ago, dev_eui=EUIS[2])
        assert deliver(body).status_code == 200
    body = payload_body(_reading(2, 40), 16, base_time=now - 2 * HOUR, dev_eui=EUIS[3])
    assert deliver(body).status_code == 200
    for ago in (HOUR, HOUR // 2):
        body = payload_body(THINGSML_HAPPY, 1, base_time=now - ago, dev_eui=EUIS[3])
        assert deliver(body).status_code == 200


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain(
    conn: Connection, now: datetime, folded_up_to: int | None = None
) -> list[dict[str, Any]]:
    """The fleet page from every row, in Python. Hours count deliveries up to
    ``folded_up_to`` (the page's bars come from the rollup); everything else is current."""
    rows = conn.execute(
        select(
            readings.c.delivery_id,
            readings.c.device,
            readings.c.time,
            readings.c.name,
            readings.c.value,
            readings.c.string_value,
        )
    ).all()
    arrived = {d.id: (d.device, _aware(d.received_at)) for d in conn.execute(select(deliveries))}
    first_hour = int(now.timestamp()) // HOUR - 23
    page = []
    for urn in sorted(conn.execute(select(devices.c.urn)).scalars()):
        own = [r for r in rows if r.device == urn]

        def newest(name: str, own: list[Any] = own) -> Any:
            named = [r for r in own if r.name == name]
            return max(named, key=lambda r: r.time) if named else None

        emotion, confidence, status = (
            newest("emotion"),
            newest("confidence"),
            newest("firmwareVersion"),
        )
        counts = [0] * 24
        sums = [0.0] * 24
        ns = [0] * 24
        for r in own:
            if folded_up_to is not None and r.delivery_id > folded_up_to:
                continue
            slot = int(_aware(r.time).timestamp()) // HOUR - first_hour
            if not 0 <= slot < 24:
                continue
            if r.name == "emotion":
                counts[slot] += 1
            elif r.name == "confidence" and r.value is not None:
                sums[slot] += r.value
                ns[slot] += 1
        total = sum(counts)
        interval = 86400 / total if total >= 2 else None
        quiet_after = max(3 * interval, 600) if interval else 86400
        last_id = max((i for i, (device, _) in arrived.items() if device == urn), default=None)
        last_seen = arrived[last_id][1] if last_id is not None else None
        page.append(
            {
                "urn": urn,
                "emotion": emotion.string_value if emotion else None,
                "emotion_time": _aware(emotion.time) if emotion else None,
                "confidence": confidence.value if confidence else None,
                "last_seen": last_seen,
                "hourly_readings": counts,
                "hourly_confidence": [s / n if n else None for s, n in zip(sums, ns, strict=True)],
                "status": {
                    r.name: r.string_value if r.value is None else r.value
                    for r in own
                    if status is not None and r.delivery_id == status.delivery_id
                },
                "status_time": _aware(status.time) if status else None,
                "expected_interval_s": interval,
                "silent": last_seen is None or (now - last_seen).total_seconds() > quiet_after,
            }
        )
    return page


def _fast(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "urn": row.urn,
            "emotion": row.emotion,
            "emotion_time": row.emotion_time,
            "confidence": row.confidence,
            "last_seen": row.last_seen,
            "hourly_readings": row.hourly_readings,
            "hourly_confidence": row.hourly_confidence,
            "status": row.status,
            "status_time": _aware(row.status_time) if row.status_time else None,
            "expected_interval_s": row.expected_interval_s,
            "silent": row.silent,
        }
        for row in queries.fleet(conn, now=now)
    ]


def _same(fast: list[dict[str, Any]], plain: list[dict[str, Any]]) -> None:
    assert [d["urn"] for d in fast] == [d["urn"] for d in plain]
    for got, want in zip(fast, plain, strict=True):
        for key, value in want.items():
            if key == "hourly_confidence":
                assert got[key] == [pytest.approx(v) if v is not None else None for v in value]
            elif isinstance(value, float):
                assert got[key] == pytest.approx(value), (got["urn"], key)
            else:
                assert got[key] == value, (got["urn"], key)


def test_the_fleet_page_equals_the_plain_computation(store: Store, deliver: Deliver) -> None:
    now = time.time()
    _fill(deliver, now)
    at = datetime.fromtimestamp(now, UTC)
    with store.read_engine.connect() as conn:
        plain = _plain(conn, at)
        assert sum(map(sum, (d["hourly_readings"] for d in plain))) >= 20  # the data is busy
        assert sum(plain[2]["hourly_readings"]) == 0 and plain[2]["emotion"] == "happy"
        assert plain[0]["status"]["firmwareVersion"] == "1.0.0"
        assert plain[3]["emotion"] == "happy" and plain[3]["confidence"] == pytest.approx(0.4)
        _same(_fast(conn, at), plain)
        later = at + timedelta(hours=5)
        _same(_fast(conn, later), _plain(conn, later))


# The rollup job runs on PostgreSQL only.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_rollup_rows_give_the_same_page(store: Store, deliver: Deliver) -> None:
    now = time.time()
    _fill(deliver, now)
    for _ in range(2):  # the first run notes the newest id, the second folds up to it
        with store.write_engine.begin() as conn:
            mark = fold(conn, settle_s=0)
    assert mark
    at = datetime.fromtimestamp(now, UTC)
    with store.read_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rollup_device_day)).scalar() == 4
        _same(_fast(conn, at), _plain(conn, at))
    # Past the watermark: latest emotion and last uplink current, the bars from the rollup.
    body = payload_body(_reading(6, 91), 16, base_time=now - 1, dev_eui=EUIS[2])
    assert deliver(body).status_code == 200
    with store.read_engine.connect() as conn:
        fast = _fast(conn, at + timedelta(seconds=2))
        _same(fast, _plain(conn, at + timedelta(seconds=2), folded_up_to=mark))
        assert fast[2]["emotion"] == "neutral"
        # Hours later than the job's windows: each window is shifted, hours after it empty.
        later = at + timedelta(hours=3)
        _same(_fast(conn, later), _plain(conn, later, folded_up_to=mark))
    for _ in range(2):
        with store.write_engine.begin() as conn:
            fold(conn, settle_s=0)
    with store.read_engine.connect() as conn:
        _same(_fast(conn, at + timedelta(seconds=2)), _plain(conn, at + timedelta(seconds=2)))
    with store.write_engine.begin() as conn:
        update_device_days(conn, now=at + timedelta(hours=3))  # the hour moved on: rebuild all
        firsts = set(conn.execute(select(rollup_device_day.c.first_hour)).scalars())
        assert firsts == {int(later.timestamp()) // HOUR - 23}
    with store.read_engine.connect() as conn:
        _same(_fast(conn, later), _plain(conn, later))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_migration_7_fills_the_windows_of_a_folded_database(database_url: str) -> None:
    from lora_emotion.webhook.storage import create_store

    store = create_store(database_url)
    try:
        migrate(store.write_engine, target=6)
        hour = int(time.time()) // HOUR
        with store.write_engine.begin() as conn:
            conn.execute(
                insert(devices),
                [
                    {
                        "urn": f"urn:dev:DEVEUI:{eui}",
                        "dev_eui": eui,
                        "first_seen": datetime.now(UTC),
                    }
                    for eui in EUIS
                ],
            )
            conn.execute(
                insert(rollup_device_hour),
                [
                    {
                        "device": f"urn:dev:DEVEUI:{EUIS[0]}",
                        "hour": datetime.fromtimestamp((hour - ago) * HOUR, UTC),
                        "readings": 2 + ago,
                        "confidence_sum": 1.5,
                        "confidence_count": 2,
                    }
                    for ago in (0, 5, 23, 24)
                ],
            )
        migrate(store.write_engine)
        with store.read_engine.connect() as conn:
            rows = {r.device: r for r in conn.execute(select(rollup_device_day))}
        assert set(rows) == {f"urn:dev:DEVEUI:{eui}" for eui in EUIS}
        busy = rows[f"urn:dev:DEVEUI:{EUIS[0]}"]
        assert busy.first_hour == hour - 23
        assert busy.readings.replace(" ", "") == ("[25," + "0," * 17 + "7," + "0," * 4 + "2]")
        assert busy.confidence.count("0.75") == 3
    finally:
        store.dispose()


#: Devices of the randomized test: the fourth never sends an emotion, the fifth no confidence.
DEVICES = [f"urn:dev:DEVEUI:0004A30B00F0010{n}" for n in range(5)]


def _insert(conn: Connection, device: str, at: datetime, rows: list[tuple[Any, ...]]) -> int:
    """A delivery of ``device`` received ``at``, with readings (name, time, value, text)."""
    delivery_id = conn.execute(
        insert(deliveries)
        .values(
            dedup_key=uuid.uuid4().hex,
            plug_uuid="plug",
            device=device,
            received_at=at,
            kind="payload",
            decode_status="ok",
            reading_count=len(rows),
            headers="{}",
            body=b"{}",
        )
        .returning(deliveries.c.id)
    ).scalar_one()
    if rows:
        conn.execute(
            insert(readings),
            [
                {
                    "delivery_id": delivery_id,
                    "seq": seq,
                    "device": device,
                    "time": time_,
                    "name": name,
                    "value": value,
                    "string_value": label,
                    "origin": "kpn",
                }
                for seq, (name, time_, value, label) in enumerate(rows)
            ],
        )
    return int(delivery_id)


def _random_readings(pick: random.Random, device: str, at: datetime) -> list[tuple[Any, ...]]:
    """An uplink's readings, at times up to a day before ``at`` in any order of arrival."""

    def when() -> datetime:
        return at - timedelta(microseconds=pick.randrange(1, 86_400_000_000))

    kind = pick.choice(["reading", "reading", "reading", "status", "other"])
    if kind == "status":
        t = when()
        return [
            ("firmwareVersion", t, None, f"1.{pick.randrange(9)}.0"),
            ("labelSetId", t, 1.0, None),
        ]
    if kind == "other" or device == DEVICES[3]:
        return [("count:happy", when(), float(pick.randrange(5)), None)]
    rows = []
    for _ in range(pick.randrange(1, 4)):
        t = when()
        rows.append(("emotion", t, None, pick.choice(["happy", "sad", "angry"])))
        if device != DEVICES[4]:
            rows.append(("confidence", t, pick.random(), None))
    return rows


def _arrival(pick: random.Random, at: datetime) -> datetime:
    # Workers stamp arrivals before their batches take ids, so ids need not follow them.
    return at - timedelta(seconds=pick.randrange(3600))


def _pages(store: Store, at: datetime) -> tuple[list[Any], list[Any]]:
    """The fleet page as the service reads it, and as it reads it by probes per device (with
    the job's newest facts per device out of sight, as before its first run)."""
    with store.read_engine.connect() as conn:
        page = queries.fleet(conn, now=at)
    with store.write_engine.connect() as conn, conn.begin() as transaction:
        conn.execute(delete(rollup_state).where(rollup_state.c.name == queries.LATEST_NAME))
        probed = queries.fleet(conn, now=at)
        transaction.rollback()
    return page, probed


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("seed", range(6))
def test_the_newest_facts_per_device_read_as_the_probes_do(store: Store, seed: int) -> None:
    """Deliveries before and past the job's watermarks, readings in any time order, status
    messages, a transaction in flight while the job runs, ids never used: after each step the
    page equals the page by probes and the plain computation from every row."""
    pick = random.Random(seed)
    at = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        # Known devices: a batch in flight would hold a new one's row, and a second batch of
        # that device would wait for it.
        conn.execute(
            insert(devices), [{"urn": d, "dev_eui": d[-16:], "first_seen": at} for d in DEVICES]
        )
    in_flight: Connection | None = None
    flights = 0
    read_past = {False: 0, True: 0}  # pages that read the job's rows: without gaps, with
    try:
        for step in range(80):
            if in_flight is None:
                action = pick.choice(["deliver"] * 3 + ["fold"] * 3 + ["fly", "skip", "forget"])
            else:
                action = pick.choice(["deliver"] * 3 + ["fold", "fold", "land", "skip"])
            if action == "fly":
                # A batch whose id is taken but not committed while the job runs.
                in_flight = store.write_engine.connect()
                in_flight.begin()
                device = pick.choice(DEVICES)
                _insert(in_flight, device, _arrival(pick, at), _random_readings(pick, device, at))
                flights += 1
            elif action == "land":
                assert in_flight is not None
                in_flight.commit()
                in_flight.close()
                in_flight = None
            elif action == "fold":
                # Nothing may settle while a batch is in flight: the settle time sees to that.
                settle = float("inf") if in_flight is not None else 0.0
                with store.write_engine.begin() as conn:
                    fold(conn, settle_s=settle)
            elif action == "skip":  # an id a duplicate used up
                with store.write_engine.begin() as conn:
                    conn.execute(text("SELECT nextval(pg_get_serial_sequence('deliveries', 'id'))"))
            elif action == "forget":  # as after migration 8: the job fills the table again
                with store.write_engine.begin() as conn:
                    conn.execute(delete(rollup_state).where(rollup_state.c.name == "latest"))
            else:
                device = pick.choice(DEVICES)
                with store.write_engine.begin() as conn:
                    _insert(conn, device, _arrival(pick, at), _random_readings(pick, device, at))
            page, probed = _pages(store, at)
            assert page == probed, (seed, step, action)
            with store.read_engine.connect() as conn:
                plain = _plain(conn, at)
                state = conn.execute(select(rollup_state)).all()
                newest = conn.execute(select(func.max(deliveries.c.id))).scalar()
            for got, want in zip(page, plain, strict=True):
                for key in ("urn", "emotion", "emotion_time", "confidence", "last_seen", "status"):
                    assert getattr(got, key) == want[key], (seed, step, action, key)
                assert (got.status_time and _aware(got.status_time)) == want["status_time"]
            marks = {row.name: row for row in state}
            if "latest" in marks:
                gaps = orjson.loads(marks["latest"].gaps)
                assert all(g > marks["hourly"].watermark for g in gaps)
                past = newest - marks["latest"].watermark + len(gaps)
                if past <= queries.TAIL_PER_DEVICE * len(DEVICES):
                    read_past[bool(gaps)] += 1
        assert flights and read_past[False] >= 5 and read_past[True] >= 3, read_past
    finally:
        if in_flight is not None:
            in_flight.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_after_migration_8_the_job_fills_the_newest_facts(database_url: str) -> None:
    from lora_emotion.webhook.storage import create_store

    store = create_store(database_url)
    try:
        migrate(store.write_engine, target=7)
        pick = random.Random(8)
        at = datetime.now(UTC)
        with store.write_engine.begin() as conn:
            conn.execute(
                insert(devices),
                [{"urn": d, "dev_eui": d[-16:], "first_seen": at} for d in DEVICES],
            )
            for n in range(30):
                device = DEVICES[n % len(DEVICES)]
                _insert(conn, device, _arrival(pick, at), _random_readings(pick, device, at))
            # A database the job of version 7 folded into, up to delivery 20.
            conn.execute(
                text(
                    "INSERT INTO rollup_state (name, watermark, pending, pending_at) "
                    "VALUES ('hourly', 20, 30, now())"
                )
            )
        migrate(store.write_engine)
        with store.read_engine.connect() as conn:
            assert (
                conn.execute(select(func.count()).select_from(rollup_device_latest)).scalar() == 0
            )
            before = queries.fleet(conn, now=at)
        with store.write_engine.begin() as conn:
            assert fold(conn, settle_s=float("inf")) == 20  # nothing more settles
        with store.read_engine.connect() as conn:
            latest = conn.execute(
                select(rollup_state).where(rollup_state.c.name == queries.LATEST_NAME)
            ).one()
            assert (latest.watermark, latest.gaps) == (30, "[]")
            assert (
                conn.execute(select(func.count()).select_from(rollup_device_latest)).scalar() == 5
            )
            after = queries.fleet(conn, now=at)
            plain = _plain(conn, at)
        assert after == before
        assert [(r.urn, r.emotion, r.confidence, r.last_seen) for r in after] == [
            (p["urn"], p["emotion"], p["confidence"], p["last_seen"]) for p in plain
        ]
    finally:
        store.dispose()
