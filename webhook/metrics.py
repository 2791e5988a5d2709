"""Prometheus metrics of the service.

With several uvicorn workers each process counts for itself; ``lora-emotion serve`` then sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, and :func:`render` sums the per-process
files so that ``/metrics`` tells the truth whichever worker answers it.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "BATCH_SIZE",
    "COMMIT_SECONDS",
    "CONTENT_TYPE_LATEST",
    "DECODE_ERRORS",
    "DELIVERIES",
    "DELIVERY_SECONDS",
    "NETWORKS",
    "OUTCOMES",
    "OUTCOME_COUNTERS",
    "render",
]

#: Every value the ``network`` label takes.
NETWORKS = ("kpn", "ttn", "chirpstack")
#: Every value the ``outcome`` label of ``DELIVERIES`` takes (``ignored``: a message that is
#: no uplink, such as a join, answered 2xx and not stored).
OUTCOMES = (
    "stored",
    "duplicate",
    "ignored",
    "unauthorized",
    "forbidden",
    "too_large",
    "unsupported_media_type",
    "malformed",
    "unavailable",
)

DELIVERIES = Counter(
    "lora_emotion_deliveries",
    "Deliveries received, by network and outcome.",
    ["network", "outcome"],
)
#: ``DELIVERIES`` by network and outcome, created up front so that every outcome shows from
#: the start (at 0), and looked up once: ``labels()`` takes a lock and builds a key each call.
OUTCOME_COUNTERS = {
    network: {outcome: DELIVERIES.labels(network, outcome) for outcome in OUTCOMES}
    for network in NETWORKS
}
_DECODE_ERRORS = Counter(
    "lora_emotion_decode_errors",
    "Stored deliveries whose raw payload did not decode, by network.",
    ["network"],
)
DECODE_ERRORS = {network: _DECODE_ERRORS.labels(network) for network in NETWORKS}
_DELIVERY_SECONDS = Histogram(
    "lora_emotion_delivery_seconds",
    "Time from request to answer for deliveries, commit included, by network.",
    ["network"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DELIVERY_SECONDS = {network: _DELIVERY_SECONDS.labels(network) for network in NETWORKS}
COMMIT_SECONDS = Histogram(
    "lora_emotion_commit_seconds",
    "Duration of one group-commit transaction.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)
BATCH_SIZE = Histogram(
    "lora_emotion_commit_batch_size",
    "Deliveries committed per transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)


def render() -> bytes:
    """The metrics in Prometheus text format, summed over the worker processes if several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
