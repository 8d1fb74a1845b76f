import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import msgspec

from core.contract import Queued
from workers import serve
from workers.judge import Defer, Judgement, judge
from workers.simulator import Simulator
from workers.verify import Breaker, Pace, Verification, Verified, in_turn


@contextlib.asynccontextmanager
async def simulator(service: Simulator) -> AsyncIterator[str]:
    """The simulator served on a free loopback port: its base URL."""
    served = await serve.start(service.routes, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{served.port}"
    finally:
        await served.close()


Q = Queued("k", "n", "", "2026-03-01", 12850, "", "", "", "", "p", "u", "d", "b", "c", 0)


def test_pace_keeps_calls_under_the_qps_cap() -> None:
    async def twenty() -> float:
        pace = Pace(None, 100)
        started = time.monotonic()
        for _ in range(20):
            await pace.wait()
        return time.monotonic() - started

    assert asyncio.run(twenty()) >= 0.18


def test_breaker_opens_on_a_share_of_failures_not_on_one_bad_invoice() -> None:
    breaker = Breaker(failures=5, cooldown_s=60)
    for ok in [False, False, False, True, True, True, True]:
        breaker.record(ok)
    assert breaker.allow()
    for _ in range(2):
        breaker.record(False)
    assert not breaker.allow()


class Shown:
    def __init__(self) -> None:
        self.values: list[float] = []

    def set(self, value: float) -> None:
        self.values.append(value)


def test_breaker_counts_failures_over_its_window_and_shows_only_changes() -> None:
    gauge = Shown()
    breaker = Breaker(failures=3, cooldown_s=60, gauge=gauge)
    for ok in [False, False] + [True] * Breaker.WINDOW:  # two failures, then successes that push them out
        breaker.record(ok)
    assert breaker.failed == 0 and breaker.allow()
    for ok in [False, True, False, True]:
        breaker.record(ok)
    assert breaker.failed == 2 and breaker.allow()
    breaker.record(False)
    assert not breaker.allow()
    assert gauge.values == [0, 1]  # written when the state changed, not on each of the 27 calls


def test_breaker_half_open_lets_one_call_decide() -> None:
    breaker = Breaker(failures=2, cooldown_s=0.0)
    breaker.record(False)
    breaker.record(False)
    assert breaker.allow()  # cooldown over: one trial
    assert not breaker.allow()  # and only one
    breaker.record(True)
    assert breaker.allow() and breaker.allow()


def test_not_found_is_asked_again_on_schedule_then_final() -> None:
    v = Verification("not_found")
    assert judge(Q, v, 0, [2.0, 10.0], 5) == Defer(2.0)
    assert judge(Q, v, 1, [2.0, 10.0], 5) == Defer(10.0)
    assert judge(Q, v, 2, [2.0, 10.0], 5) == Judgement("ineligible", "not_found_at_tax_authority")


def test_errors_back_off_then_fail_and_an_open_breaker_spends_no_try() -> None:
    assert judge(Q, Verification("error"), 0, [], 2) == Defer(1.0)
    assert judge(Q, Verification("error"), 1, [], 2) == Defer(2.0)
    assert judge(Q, Verification("error"), 2, [], 2) == Judgement("ineligible", "verification_failed")
    assert judge(Q, Verification("unavailable"), 9, [], 2, 5.0) == Defer(5.0, spend_try=False)


def test_verified_facts_must_match_the_upload() -> None:
    def found(amount: int, date: str, status: str = "normal") -> Verification:
        return Verification("found", Verified(amount, date, status))

    assert judge(Q, found(12850, "2026-03-01"), 0, [], 0) == Judgement("verified")
    assert judge(Q, found(12950, "2026-03-01"), 0, [], 0).reason == "amount_mismatch"  # type: ignore[union-attr]
    assert judge(Q, found(12850, "2026-03-02"), 0, [], 0).reason == "issue_date_mismatch"  # type: ignore[union-attr]
    assert judge(Q, found(12850, "2026-03-01", "reversed"), 0, [], 0) == Judgement(
        "reversed", "reversed_at_verification"
    )


def test_an_invoice_the_service_always_fails_on_ends_even_when_it_is_the_only_traffic() -> None:
    """Half-open trials of a 995-like invoice alone must not keep it waiting forever."""
    from workers.http1 import Origin
    from workers.verify import Verifier

    async def run() -> list[str]:
        async with simulator(Simulator(0, 0)) as url:
            verifier = Verifier(
                Origin(url, timeout_s=1.0),
                concurrency=4,
                attempts=1,
                breaker=Breaker(failures=2, cooldown_s=0.0),
                name_ref=lambda name: "hash of a name",
            )
            bad = Queued("k", "26341000000000000995", "", "2026-03-01", 100, "", "", "", "", "p", "u", "d", "b", "c", 0)
            return [(await verifier.verify(bad)).outcome for _ in range(5)]

    assert asyncio.run(run()) == ["error"] * 5  # each try spent: the invoice becomes final after its retries


def test_verified_facts_meet_the_campaigns_rules_or_get_a_reason() -> None:
    from core.campaign import Eligibility

    rules = Eligibility(categories=("catering", "30704"), unknown_category_eligible=False)
    found = Verified(12850, "2026-03-01", "normal", seller_tax_id=Q.seller_tax_id, buyer_ref=Q.buyer_ref)

    def reason(**changes: object) -> str | None:
        v = Verification("found", msgspec.structs.replace(found, **changes))
        got = judge(msgspec.structs.replace(Q, category="catering"), v, 0, [], 0, rules=rules)
        assert isinstance(got, Judgement)
        return got.reason

    assert reason() is None
    assert reason(category="3070401000") is None  # a tax classification code under an eligible prefix
    assert reason(category="wholesale") == "category_not_eligible"
    assert reason(kind="fixed_amount") == "excluded_invoice_kind"
    assert reason(buyer_kind="organisation") == "buyer_not_natural_person"
    assert reason(buyer_ref="someone else") == "buyer_name_mismatch"
    assert reason(seller_tax_id="another seller") == "seller_mismatch"
    assert reason(buyer_ref=None, seller_tax_id=None) is None  # left out by the service: the upload stands
    unknown = judge(Q, Verification("found", found), 0, [], 0, rules=rules)  # Q has no category
    assert unknown == Judgement("ineligible", "category_unknown")


def test_simulated_latency_has_the_median_and_tail_asked_for() -> None:
    from workers.simulator import Latency

    draws = sorted(Latency(10, 80).draw() for _ in range(20000))
    assert 0.009 < draws[10000] < 0.011
    assert 0.07 < draws[19800] < 0.09
    assert Latency(0, 0).draw() == 0.0


def test_the_simulator_refuses_beyond_its_rate_in_any_second() -> None:
    from workers.simulator import Window

    window = Window(5)
    assert [window.take() for _ in range(7)] == [True] * 5 + [False] * 2
    assert window.busiest == 5
    unlimited = Window(0)
    assert all(unlimited.take() for _ in range(100)) and unlimited.busiest == 100


def test_a_429_from_the_service_makes_the_invoice_wait_without_spending_a_try() -> None:
    from workers.http1 import Origin
    from workers.verify import Verifier

    async def run() -> list[str]:
        async with simulator(Simulator(0, 0, qps=1)) as url:
            verifier = Verifier(Origin(url, timeout_s=1.0), concurrency=1, attempts=2, name_ref=str)
            fine = msgspec.structs.replace(Q, number="26341000000000000120")
            return [(await verifier.verify(fine)).outcome for _ in range(2)]

    first, throttled = asyncio.run(run())
    assert first == "found" and throttled == "unavailable"
    assert isinstance(judge(Q, Verification("unavailable"), 0, [], 0), Defer)
    assert judge(Q, Verification("unavailable"), 0, [], 0).spend_try is False  # type: ignore[union-attr]


def test_the_simulator_remembers_tries_only_for_the_invoices_that_need_them() -> None:
    import aiohttp

    service = Simulator(0, 0)

    async def run() -> list[int]:
        async with simulator(service) as url, aiohttp.ClientSession() as session:
            statuses = []
            for number in ["26341000000000000120", "26341000000000000121"] + ["26341000000000000996"] * 3:
                asked = {"number": number, "code": "", "issue_date": "2026-03-01", "amount": "128.50"}
                async with session.post(f"{url}/verify", json=asked) as answer:
                    statuses.append(answer.status)
            return statuses

    assert asyncio.run(run()) == [200, 200, 404, 404, 200]  # 996: not found twice, then found
    assert dict(service.tries) == {"26341000000000000996": 3}  # a plain invoice leaves nothing behind


def test_in_turn_answers_each_item_in_order_with_at_most_its_tasks_at_once() -> None:
    """Items take unequal times, so they finish out of order: the answers still come in the items' order, each
    item is called once, and no more than ``tasks`` calls are ever under way."""
    running, most, calls = 0, 0, []

    async def call(i: int) -> int:
        nonlocal running, most
        calls.append(i)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (i % 5))
        running -= 1
        return i * i

    answers = asyncio.run(in_turn(8, list(range(100)), call))
    assert answers == [i * i for i in range(100)]
    assert sorted(calls) == list(range(100)) and most == 8
    assert asyncio.run(in_turn(8, [], call)) == []
    assert asyncio.run(in_turn(8, [3], call)) == [9]
