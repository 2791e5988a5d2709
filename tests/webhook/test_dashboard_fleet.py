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
from datetime import UTC, datetime, timedelta
from typing import Any

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
)
from lora_emotion.webhook.storage import Store
from sqlalchemy import Connection, func, insert, select
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
