"""The provisioned Grafana dashboard's SQL, run against the real PostgreSQL store.

Grafana expands its macros before sending a query; the test expands them the way Grafana's
PostgreSQL datasource documents them, runs every panel's query and the variable's on a store
that the webhook filled, and checks what comes back.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Deliver
from fastapi.testclient import TestClient
from lora_emotion.webhook.dashboard.rollup import fold
from lora_emotion.webhook.storage import Store
from webhook_support import DEVICE, payload_body

GRAFANA = Path(__file__).resolve().parents[2] / "webhook" / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "lora-emotion.json"
NOW = time.time()


def _expand(sql: str, start: datetime, end: datetime, device: str) -> str:
    """Grafana's PostgreSQL macros and this dashboard's variable, as Grafana expands them."""
    span = (end - start).total_seconds()
    interval_s = max(1, int(span // 100))  # $__interval: the range over ~100 points

    def seconds(text: str) -> int:
        text = text.strip().strip("'")
        if text == "$__interval":
            return interval_s
        number, unit = int(text[:-1]), text[-1]
        return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]

    def time_filter(match: re.Match[str]) -> str:
        return f"{match[1]} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"

    def group_alias(match: re.Match[str]) -> str:
        size = seconds(match[2])
        return f'to_timestamp(floor(extract(epoch from {match[1]})/{size})*{size}) AS "time"'

    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", time_filter, sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*([^)]+)\)", group_alias, sql)
    assert "$__" not in sql, sql
    return sql.replace("$device", device)


def _run(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cursor = conn.execute(sql)  # type: ignore[call-overload]
        assert cursor.description is not None
        return [c.name for c in cursor.description], cursor.fetchall()


def _panels() -> dict[str, str]:
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return {p["title"]: p["targets"][0]["rawSql"] for p in document["panels"]}


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    datasource = (GRAFANA / "provisioning" / "datasources" / "lora-emotion.yaml").read_text()
    uid = re.search(r"uid: (\S+)", datasource)
    assert uid is not None
    for panel in document["panels"]:
        assert panel["datasource"]["uid"] == uid[1]
        assert all(t["datasource"]["uid"] == uid[1] for t in panel["targets"])
    assert document["templating"]["list"][0]["datasource"]["uid"] == uid[1]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_panel_query_runs_on_the_store(
    client: TestClient, deliver: Deliver, store: Store, database_url: str
) -> None:
    # happy 0.87 two hours ago and 30 minutes ago, sad 0.50 now; then the rollup folds the
    # first two, and one more arrives past its watermark.
    for payload, at in (("0186", NOW - 7200), ("0186", NOW - 1800)):
        assert deliver(payload_body(payload, 16, base_time=at)).status_code == 200
    with store.write_engine.begin() as conn:
        fold(conn, settle_s=0)
    with store.write_engine.begin() as conn:
        assert fold(conn, settle_s=0) == 2
    assert deliver(payload_body("01C6", 16, base_time=NOW - 5)).status_code == 200

    end = datetime.now(UTC)
    start = end - timedelta(hours=24)
    panels = _panels()
    assert len(panels) == 5

    columns, rows = _run(
        database_url, _expand(panels["Fleet emotion mix per hour"], start, end, DEVICE)
    )
    assert columns == ["time", "metric", "value"]
    totals: dict[str, int] = {}
    for _, label, value in rows:
        totals[label] = totals.get(label, 0) + int(value)
    assert totals == {"happy": 2, "sad": 1}  # rollup and readings past it, each once

    columns, rows = _run(
        database_url, _expand(panels["Latest emotion per device"], start, end, DEVICE)
    )
    assert columns[:3] == ["device", "emotion", "confidence"]
    assert [(r[0], r[1], round(r[2], 2)) for r in rows] == [(DEVICE, "sad", 0.5)]

    columns, rows = _run(database_url, _expand(panels["Deliveries per minute"], start, end, DEVICE))
    assert columns == ["time", "deliveries", "decode_errors"]
    assert sum(r[1] for r in rows) == 3 and sum(r[2] for r in rows) == 0

    columns, rows = _run(database_url, _expand(panels["Confidence of $device"], start, end, DEVICE))
    assert columns == ["time", "confidence"]
    assert sorted(round(r[1], 2) for r in rows) == [0.5, 0.87, 0.87]

    columns, rows = _run(
        database_url,
        _expand(panels["Emotion readings of $device per label"], start, end, DEVICE),
    )
    assert columns == ["time", "metric", "readings"]
    assert sorted((r[1], r[2]) for r in rows) == [("happy", 1), ("happy", 1), ("sad", 1)]

    variable = json.loads(DASHBOARD.read_text())["templating"]["list"][0]["query"]
    assert _run(database_url, variable)[1] == [(DEVICE,)]
