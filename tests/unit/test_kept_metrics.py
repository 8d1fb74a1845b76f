"""Metrics kept in the process (core/metrics.py ``keep``): nothing reaches the shared file until ``flush``; then
the merged exposition holds exactly what direct updates would have written."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import Counter, Gauge, Histogram, generate_latest, values

from core import metrics
from core.metrics import exposition, keep


@pytest.fixture
def multiprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    monkeypatch.setattr(metrics, "_KEPT", [])
    return tmp_path


def lines(folder: Path) -> set[str]:
    """What /metrics would show from the files alone (``exposition`` would flush first)."""
    return set(generate_latest(metrics.merged_registry(str(folder))).decode().splitlines())


def test_kept_updates_reach_the_file_at_the_flush(multiprocess: Path) -> None:
    counter = keep(Counter("kept_jobs", "jobs", ["kind"], registry=None).labels("a"))
    latency = keep(Histogram("kept_latency_seconds", "time", buckets=(0.01, 0.1), registry=None))
    busy = keep(Gauge("kept_busy", "busy", multiprocess_mode="livesum", registry=None))
    level = keep(Gauge("kept_level", "level", multiprocess_mode="livesum", registry=None))
    counter.inc()
    counter.inc(2)
    for took in (0.005, 0.05, 0.05, 3.0):
        latency.observe(took)
    busy.inc()
    busy.inc()
    busy.dec()
    level.set(7)  # a set is written at once
    before = lines(multiprocess)
    assert 'kept_jobs_total{kind="a"} 3.0' not in before
    assert "kept_latency_seconds_count 4.0" not in before
    assert "kept_busy 1.0" not in before
    assert "kept_level 7.0" in before
    assert counter._value.get() == 3.0  # this process sees its own updates at once

    metrics.flush()
    after = lines(multiprocess)
    assert 'kept_jobs_total{kind="a"} 3.0' in after
    assert {
        'kept_latency_seconds_bucket{le="0.01"} 1.0',
        'kept_latency_seconds_bucket{le="0.1"} 3.0',
        'kept_latency_seconds_bucket{le="+Inf"} 4.0',
        "kept_latency_seconds_count 4.0",
        "kept_latency_seconds_sum 3.105",
    } <= after
    assert "kept_busy 1.0" in after
    metrics.flush()  # nothing kept: nothing written twice
    assert 'kept_jobs_total{kind="a"} 3.0' in lines(multiprocess)


def test_exposition_writes_this_process_first(multiprocess: Path) -> None:
    counter = keep(Counter("kept_scraped", "scraped", registry=None))
    counter.inc(5)
    body, _ = exposition(str(multiprocess))
    assert "kept_scraped_total 5.0" in body.decode().splitlines()


def test_keep_twice_keeps_once(multiprocess: Path) -> None:
    counter = Counter("kept_once", "once", registry=None)
    keep(keep(counter))
    counter.inc()
    metrics.flush()
    assert "kept_once_total 1.0" in lines(multiprocess)
    assert len(metrics._KEPT) == 1
