"""The daily report on the real stack: every figure of a known mix is counted once, on its day, from the
rollups the gateway's tallies and the workers' transactions maintain; an entry delivered twice, and the path of
a key the filter had seen, count right; only auditors and admins read it."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from core import campaign as campaigns
from core import keys, report
from core.rollup import Rollup
from core.settings import Settings
from core.stores import open_redis
from dedup.rebuild import Adder
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import signed
from tests.integration.test_reversals import red, reverse

SHARDS = 4
Figures = Counter[str]


@pytest.fixture
def auditor(base_url: str) -> Iterator[SignedClient]:
    yield from signed(base_url, "demo-auditor")


def days_now(settings: Settings) -> tuple[dt.date, dt.date]:
    """Yesterday and today in the campaign's zone: a test that runs across midnight still sums its figures."""
    today = Rollup.of(campaigns.load(settings.campaign_file)).day(dt.datetime.now(dt.UTC))
    return today - dt.timedelta(days=1), today


def figures(reader: SignedClient, first: dt.date, last: dt.date, channel: str | None = None) -> Figures:
    """Every figure of the days, summed: counts and amounts, and each reason as ``<figure>:<reason>``."""
    query = f"from={first}&to={last}" + (f"&channel={channel}" if channel else "")
    resp = reader.request("GET", f"/v1/reports/daily?{query}")
    assert resp.status_code == 200, resp.text
    return sum((flat(d) for d in resp.json()["days"]), Counter())


def flat(scope: dict[str, Any], prefix: str = "") -> Figures:
    found: Figures = Counter()
    for name in report.columns():
        value = scope[name]
        if isinstance(value, dict):
            found.update({f"{prefix}{name}:{reason}": n for reason, n in value.items()})
        elif isinstance(value, int):
            found[prefix + name] += value
    return found


def industries(reader: SignedClient, first: dt.date, last: dt.date) -> Figures:
    days = reader.request("GET", f"/v1/reports/daily?from={first}&to={last}").json()["days"]
    return sum((flat(i, i["industry"] + "/") for d in days for i in d["by_industry"]), Counter())


def answers(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 202, resp.text
    return list(resp.json()["results"])


def test_every_figure_of_a_mix_is_counted_once_on_its_day(
    settings: Settings, channel: SignedClient, channel2: SignedClient, auditor: SignedClient, drain: Any
) -> None:
    drain()  # what earlier tests left queued
    first, last = days_now(settings)
    before, before_industry = figures(auditor, first, last), industries(auditor, first, last)
    before_2 = figures(auditor, first, last, "demo-channel-2")
    rng = random.Random()
    # The third: an industry the campaign does not reward ("other", ineligible: category_not_eligible).
    valid = [sample.invoice(rng), sample.invoice(rng, category="零售"), sample.legacy_invoice(rng, category="software")]
    sandbox = [sample.invoice(rng, ending=e) for e in ("999", "998", "997", "996")]
    person = rng.randrange(10**9)
    capped = [sample.invoice(rng, person=person) for _ in range(3)]  # 2 a day: the third is refused
    beijing = {"id": f"u{rng.randrange(10**9)}", "device_id": "d", "location": {"lat": 39.9, "lon": 116.4}}
    far = sample.invoice(rng, user=beijing)  # held for review
    broken = [inv for _, inv in sample.broken_invoices(rng)[:3]]
    mix = [*valid, *sandbox, *capped, far, *broken, valid[0]]  # the last: the same key twice in one request
    results = answers(channel.upload(mix))
    results += answers(channel2.upload([valid[1]]))  # a duplicate of a key in flight
    drain()
    results += answers(channel2.upload([valid[2]]))  # of a committed key: the filter's "maybe", then PostgreSQL
    assert reverse(channel, red(valid[0]["number"])).json()["results"][0]["status"] == "reversed"
    drain()
    assert Counter(r["status"] for r in results) == {"accepted": 10, "duplicate": 3, "rejected": 4}

    def fen(*invoices: dict[str, Any]) -> int:
        return sum(round(float(inv["amount"]) * 100) for inv in invoices)

    expected: Figures = Counter(
        received=17,
        received_amount_fen=fen(*mix, valid[1], valid[2]),  # every amount of the mix is a valid figure
        accepted=10,
        duplicate=3,
        rejected=3,
        capped=1,
        verified=9,  # found at the tax authority: 3 valid, 998, 997, 996, 2 capped, the one held
        eligible=5,
        eligible_amount_fen=fen(*valid[:2], sandbox[3], *capped[:2]),
        ineligible=3,
        held=1,
        reversed=2,
        reversed_amount_fen=fen(valid[0], sandbox[2]),
        merchants=5,
        consumers=4,  # the two capped invoices accepted are one person's
    )
    expected.update({"capped_by_reason:person_daily_cap": 1, "ineligible_by_reason:not_found_at_tax_authority": 1})
    expected.update({"ineligible_by_reason:amount_mismatch": 1, "held_by_reason:upload_far_from_city": 1})
    expected.update({"ineligible_by_reason:category_not_eligible": 1})
    expected.update(f"rejected_by_reason:{reason}" for reason, _ in sample.broken_invoices(rng)[:3])
    assert +(figures(auditor, first, last) - before) == +expected
    by_industry = industries(auditor, first, last) - before_industry
    assert (by_industry["catering/eligible"], by_industry["零售/eligible"], by_industry["other/ineligible"]) == (
        4,
        1,
        1,
    )
    assert by_industry["catering/merchants"] == 4 and by_industry["catering/consumers"] == 3
    grown_2 = +(figures(auditor, first, last, "demo-channel-2") - before_2)
    assert grown_2 == Counter(received=2, duplicate=2, received_amount_fen=fen(valid[1], valid[2]))


def test_an_entry_delivered_twice_is_counted_once(
    settings: Settings, channel: SignedClient, auditor: SignedClient, drain: Any
) -> None:
    drain()
    first, last = days_now(settings)
    before = figures(auditor, first, last)
    rng = random.Random()
    request_id = channel.upload([sample.invoice(rng), sample.invoice(rng)]).json()["request_id"]

    async def copy_entries() -> int:
        """Write every entry of the request again: a redelivery, or a retried script call, as the workers see it."""
        redis = open_redis(settings.stores)
        try:
            copied = 0
            for shard in range(SHARDS):
                for _, fields in await redis.xrange(keys.stream(shard)):
                    if fields[b"~request"] == request_id.encode():
                        await redis.xadd(keys.stream(shard), fields)
                        copied += 1
            return copied
        finally:
            await redis.aclose()

    assert asyncio.run(copy_entries()) >= 1
    drain()
    grown = +(figures(auditor, first, last) - before)
    assert grown["received"] == 2 and grown["accepted"] == 2 and grown["eligible"] == 2 and grown["verified"] == 2


def test_a_false_positive_of_the_filter_is_accepted_not_a_duplicate(
    settings: Settings, channel: SignedClient, auditor: SignedClient, drain: Any
) -> None:
    """The filter says "maybe" (counted a duplicate), PostgreSQL says new, the force call claims it: the force
    call's entry moves it from duplicate to accepted."""
    drain()
    first, last = days_now(settings)
    before = figures(auditor, first, last)
    inv = sample.invoice(random.Random())

    async def mark() -> None:
        redis = open_redis(settings.stores)
        try:
            await Adder(redis, SHARDS).add([inv["number"]])
        finally:
            await redis.aclose()

    asyncio.run(mark())
    assert answers(channel.upload([inv]))[0]["status"] == "accepted"
    drain()
    grown = +(figures(auditor, first, last) - before)
    assert (grown["received"], grown["accepted"], grown["duplicate"], grown["eligible"]) == (1, 1, 0, 1)


def test_only_auditors_and_admins_read_reports_and_bad_parameters_are_refused(
    base_url: str, channel: SignedClient, draw: SignedClient, auditor: SignedClient
) -> None:
    with SignedClient(base_url, "demo-admin", "demo-admin-secret") as admin:
        assert admin.request("GET", "/v1/reports/daily?date=2026-03-01").status_code == 200
    for caller in (channel, draw):
        resp = caller.request("GET", "/v1/reports/daily?date=2026-03-01")
        assert resp.status_code == 403 and resp.json()["code"] == "wrong_role"
    for query in ("", "date=2026-02-30", "date=1", "from=2026-03-02&to=2026-03-01", "from=2025-01-01&to=2026-03-01",
                  "date=2026-03-01&from=2026-03-01", "date=2026-03-01&channel=a%20b"):  # fmt: skip
        resp = auditor.request("GET", f"/v1/reports/daily?{query}" if query else "/v1/reports/daily")
        assert resp.status_code == 400 and resp.headers["content-type"] == "application/problem+json", query
        assert resp.json()["code"] == "bad_parameter"
    csv = auditor.request("GET", "/v1/reports/daily?from=2026-03-01&to=2026-03-02", headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("date,channel,industry,received,") and lines[1].startswith("2026-03-01,*,*,")
    body = orjson.loads(auditor.request("GET", "/v1/reports/daily?date=2026-03-01&channel=demo-channel").content)
    assert body["format"] == report.FORMAT and body["timezone"] == "Asia/Shanghai" and body["channel"] == "demo-channel"
