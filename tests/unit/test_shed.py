import time

from ratelimit.pipeline import PipelineConfig, PipelineMonitor, Reading
from ratelimit.shed import Admission, SheddingConfig


def admission(max_in_flight: int = 10, **weights: float) -> Admission:
    return Admission(SheddingConfig(max_in_flight=max_in_flight, busy_share=0.5, weights=weights))


def test_requests_past_the_in_flight_cap_are_shed() -> None:
    a = admission(4)
    for _ in range(4):
        assert a.refusal("a") is None or a.refusal("a") == "fair_share"
        a.enter("b" if a.in_flight % 2 else "a")
    assert a.refusal("c") == "in_flight"
    a.leave("a")
    assert a.refusal("c") is None


def test_a_busy_process_keeps_each_channel_to_its_weighted_share() -> None:
    a = admission(10, flood=1.0, calm=1.0)
    for _ in range(6):
        a.enter("flood")
    a.enter("calm")
    assert a.refusal("flood") == "fair_share"  # 6 of 10 while its share among two channels is 5
    assert a.refusal("calm") is None


def test_a_channel_alone_may_use_the_whole_process() -> None:
    a = admission(10)
    for _ in range(9):
        assert a.refusal("only") is None
        a.enter("only")


def test_saturated_pipeline_admits_each_channel_its_share_of_the_drain() -> None:
    a = admission(100, a=3.0, b=1.0)
    a.saturated = True
    a.drain_per_s = 1000.0
    a.enter("a")
    a.enter("b")
    assert a.refusal("a") is None
    a.spent("a", 10_000)  # far beyond its share: refused until its bucket refills
    assert a.refusal("a") == "pipeline_saturated"
    assert a.refusal("b") is None
    a.saturated = False
    assert a.refusal("a") is None


def test_saturation_has_hysteresis() -> None:
    a = admission()
    config = PipelineConfig(high_age_s=10, low_age_s=2, high_backlog=100, low_backlog=10, calm_polls=3)
    monitor = PipelineMonitor(None, 1, config, a)  # type: ignore[arg-type]
    monitor.judge(Reading(backlog=5, oldest_age_s=11, done=0))
    assert a.saturated
    monitor.judge(Reading(backlog=50, oldest_age_s=5, done=0))  # between the marks: no change
    assert a.saturated
    for _ in range(2):
        monitor.judge(Reading(backlog=0, oldest_age_s=0, done=0))
        assert a.saturated
    monitor.judge(Reading(backlog=0, oldest_age_s=0, done=0))
    assert not a.saturated


def test_drain_rate_is_this_process_part_of_the_workers_rate() -> None:
    a = admission()
    monitor = PipelineMonitor(None, 1, PipelineConfig(processes=2), a)  # type: ignore[arg-type]
    monitor.judge(Reading(0, 0, done=1000))
    time.sleep(0.05)
    monitor.judge(Reading(0, 0, done=2000))
    assert 2_000 < a.drain_per_s < 10_000  # 1000 invoices in ~0.05 s, halved
