import asyncio
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


def test_a_channel_admitted_less_than_its_share_may_hold_more_than_its_share_of_slots() -> None:
    a = admission(10, flood=1.0, calm=1.0)
    for _ in range(20):  # the flood's admissions lately
        a.enter("flood")
        a.leave("flood")
    for _ in range(4):
        a.enter("flood")
    for _ in range(5):
        a.enter("calm")  # a clump of the calm channel: half of the slots, a fifth of the admissions
    assert a.light("calm") and a.refusal("calm") is None  # 5 of 10 slots: its share, and one more may come
    for _ in range(30):  # once it had more than its share of the admissions, its share of the slots holds
        a.enter("calm")
        a.leave("calm")
    assert not a.light("calm") and a.refusal("calm") == "fair_share"


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


def adaptive(max_in_flight: int = 16, min_in_flight: int = 2, **weights: float) -> Admission:
    config = SheddingConfig(
        max_in_flight=max_in_flight,
        min_in_flight=min_in_flight,
        target_latency_s=0.05,
        window_s=0.1,
        busy_share=0.5,
        weights=weights,
    )
    return Admission(config)


def run_window(a: Admission, now: float, latency_s: float, in_flight: int, channel: str = "a") -> float:
    """One window of the concurrency limit: ``in_flight`` requests held, then each finishing after ``latency_s``."""
    for _ in range(in_flight):
        a.enter(channel)
    for _ in range(in_flight):
        a.concurrency.observe(latency_s, now)
        a.leave(channel)
    # A hair past the 0.1 s window: (t + 0.1) - t can come out below 0.1 in floats, depending on the clock's
    # value (the machine's uptime), and a window that does not close made these tests flaky.
    return now + 0.1 + 1e-6


def test_the_concurrency_limit_engages_when_latency_passes_its_target_and_releases_after() -> None:
    a = adaptive(16, 2)
    now = time.monotonic() + 0.1
    assert a.concurrency.allowed() == 16
    for _ in range(3):
        now = run_window(a, now, 0.2, 8)  # slow: cut a window at a time
    limit = a.concurrency.allowed()
    assert limit == int(16 * a.concurrency.BACKOFF**3) < 16
    for _ in range(limit):
        a.enter("a")
    assert a.refusal("a") == "in_flight"  # the limit, not max_in_flight, refuses now
    for _ in range(limit):
        a.leave("a")
    for _ in range(40):
        now = run_window(a, now, 0.5, 2)
    assert a.concurrency.allowed() == 2  # never below min_in_flight
    for _ in range(30):
        now = run_window(a, now, 0.01, a.concurrency.allowed())  # fast and using its limit: it grows back
    assert a.concurrency.allowed() == 16  # never above max_in_flight


def test_an_unused_concurrency_limit_does_not_grow() -> None:
    a = adaptive(16, 2)
    now = time.monotonic() + 0.1
    for _ in range(40):
        now = run_window(a, now, 0.5, 4)
    assert a.concurrency.allowed() == 2
    for _ in range(10):
        now = run_window(a, now, 0.01, 0)  # fast, but one request at a time and no window used the limit
        a.concurrency.observe(0.01, now)
    assert a.concurrency.allowed() <= 3


def test_a_flooding_channel_cannot_take_the_other_channels_share_of_an_adapted_limit() -> None:
    a = adaptive(16, 2, flood=1.0, calm=1.0)
    now = time.monotonic() + 0.1
    for _ in range(4):
        now = run_window(a, now, 0.2, 8, "flood")  # the flood's latency cut the limit
    limit = a.concurrency.allowed()
    assert limit == int(16 * a.concurrency.BACKOFF**4) < 16
    a.refusal("calm")  # the calm channel is active: it sends now and then
    admitted = 0
    for _ in range(100):  # the flood asks far more than the limit
        if a.refusal("flood") is None:
            a.enter("flood")
            admitted += 1
    assert admitted == limit // 2  # its weighted half of the limit, whatever it asks
    assert a.light("calm") and not a.light("flood")
    calm = 0
    while a.refusal("calm") is None:
        a.enter("calm")
        calm += 1
    # The calm channel is not held to the limit the flood's latency brought down, nor to half of the slots while
    # it had less than half of the admissions: what the flood left of the ceiling.
    assert calm == 16 - limit // 2 and a.in_flight == 16
    assert a.refusal("calm") == "in_flight"
    assert a.refusal("flood") == "in_flight"


def test_a_channel_alone_is_held_to_the_adapted_limit() -> None:
    a = adaptive(16, 2)
    now = time.monotonic() + 0.1
    for _ in range(4):
        now = run_window(a, now, 0.2, 8, "only")
    limit = a.concurrency.allowed()
    for _ in range(limit):
        assert a.refusal("only") is None
        a.enter("only")
    assert not a.light("only") and a.refusal("only") == "in_flight"


def test_without_a_latency_target_the_limit_stays_fixed() -> None:
    a = admission(10)
    for _ in range(50):
        a.enter("a")
        a.leave("a", 5.0)
    assert a.concurrency.allowed() == 10


async def test_a_channel_under_its_share_waits_for_the_next_free_slot_and_the_flood_does_not() -> None:
    config = SheddingConfig(max_in_flight=4, busy_share=1.0, max_wait_s=1.0, weights={"flood": 1.0, "calm": 1.0})
    a = Admission(config)
    for _ in range(4):  # the flood holds every slot
        assert a.refusal("flood") is None
        a.enter("flood")
    assert a.refusal("calm") == "in_flight" and a.may_wait("calm")
    waiter = asyncio.create_task(a.wait("calm"))
    await asyncio.sleep(0)
    assert a.refusal("flood") == "in_flight" and not a.may_wait("flood")  # over its share: refused at once
    a.leave("flood")
    assert await waiter  # the freed slot went to the waiting channel
    assert a.by_channel == {"flood": 3, "calm": 1} and a.in_flight == 4


async def test_a_wait_for_a_slot_is_bounded_and_leaves_nothing_behind() -> None:
    a = Admission(SheddingConfig(max_in_flight=1, max_wait_s=0.05))
    a.enter("flood")
    assert a.refusal("calm") == "in_flight" and a.may_wait("calm")
    started = time.monotonic()
    assert not await a.wait("calm")
    assert time.monotonic() - started < 0.5
    assert not a.waiting
    a.leave("flood")
    assert a.in_flight == 0 and not a.by_channel


def test_without_a_wait_nobody_queues() -> None:
    a = admission(1)
    a.enter("flood")
    assert a.refusal("calm") == "in_flight" and not a.may_wait("calm")


async def test_a_channel_admitted_less_than_its_share_may_wait_beyond_its_share_of_slots_not_beyond_the_limit() -> None:
    config = SheddingConfig(max_in_flight=4, busy_share=1.0, max_wait_s=1.0, weights={"flood": 1.0, "calm": 1.0})
    a = Admission(config)
    for _ in range(20):  # the flood's admissions lately
        a.enter("flood")
        a.leave("flood")
    a.enter("flood")
    for _ in range(3):
        a.enter("calm")  # a clump: past its half of the slots, still a small part of the admissions
    assert a.light("calm") and a.refusal("calm") == "in_flight" and a.may_wait("calm")
    waiter = asyncio.create_task(a.wait("calm"))
    await asyncio.sleep(0)
    assert not a.may_wait("calm")  # three in flight and one waiting: the limit, however light
    a.leave("flood")
    assert await waiter and a.by_channel == {"calm": 4}
