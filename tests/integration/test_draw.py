"""The draw's side of the contract, end to end on the real stack (issue 21's "how we will know"): the reference
draw commits, draws a closed window through the public API and publishes a signed result; ``draw verify`` in
another folder, with the standard library alone, re-derives it from an archive of the feed and fails at a changed
batch; a winner reversed at the tax service after its verification is found by the re-verification before payout
and its prize withdrawn in the ledger; the ledger balances; the daily report shows prizes and 拉动比."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from core import campaign as campaigns
from core import prizes
from core import settings as config
from core.rollup import Rollup
from core.settings import Settings
from draw import service
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import ROOT, signed
from tests.integration.test_pipeline import read_whole_feed
from workers.cli import run_worker


@pytest.fixture
def auditor(base_url: str) -> Any:
    yield from signed(base_url, "demo-auditor")


def post(client: SignedClient, path: str, body: Any) -> httpx.Response:
    return client.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})


def prizes_of(channel: SignedClient, draw_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = ""
    while True:
        page = channel.request("GET", f"/v1/prizes?limit=500&after={after}").json()
        found |= {p["key"]: p for p in page["prizes"] if p["draw_id"] == draw_id}
        if page["next"] is None:
            return found
        after = page["next"]


def verify_elsewhere(folder: Path, result: Path, feed: Path, key: str) -> subprocess.CompletedProcess[str]:
    """``python -S -m draw verify`` run from a copy of draw/ alone: nothing of the project, no site packages."""
    if not (folder / "draw").exists():
        shutil.copytree(ROOT / "draw", folder / "draw", ignore=shutil.ignore_patterns("__pycache__"))
    argv = ["-S", "-m", "draw", "verify", "--result", str(result), "--feed", str(feed), f"--key={key}"]
    return subprocess.run([sys.executable, *argv], cwd=folder, capture_output=True, text=True, timeout=120)


def test_a_periodic_draw_is_rerun_elsewhere_a_reversed_winner_is_withdrawn_and_the_ledger_balances(
    settings: Settings,
    stack: Any,
    channel: SignedClient,
    auditor: SignedClient,
    drain: Any,
    sql: Any,
    tmp_path: Path,
) -> None:
    camp = campaigns.load(settings.campaign_file)
    drawer = service.Service(config.replace(settings, draw_dir=str(tmp_path / "draws"), draw_settle_s=1.0), camp)
    draw_id = f"t-{uuid.uuid4().hex[:12]}"
    drain()  # what earlier tests left queued is sealed before the window: the window holds this test's entries
    now = dt.datetime.now(dt.UTC)
    record = drawer.commit(draw_id, "periodic", now, now + dt.timedelta(seconds=15), "test beacon round 1")
    assert record["commitment"] == json.loads((tmp_path / "draws" / draw_id / "draw.json").read_text())["commitment"]

    rng = random.Random()
    uploaded = [sample.invoice(rng) for _ in range(14)]
    keys = [r["key"] for r in channel.upload(uploaded).json()["results"]]
    drain()
    result = drawer.run(draw_id, "beacon-value-42")  # waits for the window to close
    tiers = camp.draw.periodic.tiers
    winners = result["winners"]
    assert [w["tier"] for w in winners] == [t.name for t in tiers for _ in range(t.count)]
    assert {w["key"] for w in winners} <= set(keys) and result["entries"] >= len(keys)

    # Anyone re-runs it elsewhere: an archive of the feed, the result, the draw's public key.
    elsewhere = tmp_path / "auditor"
    archived = drawer.archive(elsewhere / "feed")
    published = elsewhere / "result.json"
    published.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    key = service.public_jwk(service.load_key(settings.draw.key_file))["x"]
    done = verify_elsewhere(elsewhere, published, elsewhere / "feed", key)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK: the draw holds"), done.stdout + done.stderr

    # One feed entry changed in the archive: verify fails at that batch.
    seq = winners[0]["batch_seq"]
    lines = archived.read_text(encoding="utf-8").splitlines()
    batches = [json.loads(line) for line in lines]
    changed = next(b for b in batches if b["seq"] == seq)
    changed["entries"][0]["amount_fen"] += 100
    archived.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in batches), encoding="utf-8")
    done = verify_elsewhere(elsewhere, published, elsewhere / "feed", key)
    assert done.returncode == 1 and f"FAILED: batch {seq}: its entries hash to" in done.stdout, done.stdout

    # Winners wait for their second verification: none can be paid before it.
    won = prizes_of(channel, draw_id)
    assert {p["status"] for p in won.values()} == {"awarded"} and len(won) == len(winners)
    first = won[winners[0]["key"]]
    refused = post(channel, f"/v1/prizes/{first['id']}/paid", {"payment_ref": "pay-early"})
    assert refused.status_code == 409 and refused.json()["code"] == "prize_not_payable"

    # The first winner's invoice is reversed at the tax authority after its first verification.
    number = next(inv["number"] for inv, k in zip(uploaded, keys, strict=True) if k == winners[0]["key"])
    sim = httpx.post(f"http://127.0.0.1:{stack.sim_port}/sandbox/reverse", json={"invoices": [{"number": number}]})
    assert sim.status_code == 200
    drain()  # re-verifies the winners due
    won = prizes_of(channel, draw_id)
    assert won[winners[0]["key"]]["status"] == "withdrawn" and won[winners[0]["key"]]["reason"]
    assert {p["status"] for k, p in won.items() if k != winners[0]["key"]} == {"payable"}
    assert channel.status(winners[0]["key"]).json()["status"] == "reversed"

    # A channel confirms a payment, once; another reference is a conflict.
    second = won[winners[1]["key"]]
    paid = post(channel, f"/v1/prizes/{second['id']}/paid", {"payment_ref": "pay-0001"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert post(channel, f"/v1/prizes/{second['id']}/paid", {"payment_ref": "pay-0001"}).status_code == 200
    other = post(channel, f"/v1/prizes/{second['id']}/paid", {"payment_ref": "pay-0002"})
    assert other.status_code == 409 and other.json()["code"] == "payment_conflict"
    withdrawn_pay = post(channel, f"/v1/prizes/{first['id']}/paid", {"payment_ref": "pay-0003"})
    assert withdrawn_pay.status_code == 409 and withdrawn_pay.json()["code"] == "prize_not_payable"

    # The ledger: every movement with its cause, totals that reconcile to the budget.
    ledger = auditor.request("GET", "/v1/admin/prize-ledger?limit=1000").json()
    assert ledger["ok"], ledger["checks"]
    t = ledger["totals"]
    assert t["budget"] == camp.draw.budget_fen
    assert t["paid"] + t["outstanding"] + t["remaining"] + t["returned"] == t["budget"]
    mine = [m for m in ledger["movements"] if (m["prize_id"] or "").startswith(f"{draw_id}:")]
    withdrawn = [m for m in mine if m["movement"] == "withdrawn"]
    assert [m["prize_id"] for m in withdrawn] == [first["id"]] and withdrawn[0]["cause"]
    assert sum(m["amount_fen"] for m in mine if m["movement"] == "awarded") == sum(w["amount_fen"] for w in winners)
    assert [m["amount_fen"] for m in mine if m["movement"] == "paid"] == [second["amount_fen"]]

    # The channel hears of its prizes on the change feed.
    events, after = [], ""
    while page := channel.request("GET", f"/v1/events?limit=1000&after={after}").json()["events"]:
        events, after = events + page, page[-1]["cursor"]
    heard = {(e["status"], e.get("prize_id")) for e in events}
    assert ("prize_withdrawn", first["id"]) in heard and ("prize_paid", second["id"]) in heard

    # The daily report: prizes by tier and 拉动比 (eligible amount over prize money).
    today = Rollup.of(camp).day(dt.datetime.now(dt.UTC))
    day = auditor.request("GET", f"/v1/reports/daily?date={today}").json()["days"][0]
    assert day["prize_amount_fen"] >= sum(w["amount_fen"] for w in winners)
    assert all(day["prizes_by_tier"].get(t.name, 0) >= t.count for t in tiers)
    assert day["pull_ratio"] == round(day["eligible_amount_fen"] / day["prize_amount_fen"], 2)

    # A payable prize its channel never confirms expires (unclaimed): its money is no longer outstanding.
    third = won[winners[2]["key"]]
    sql("UPDATE prizes SET expires_at = now() - interval '1 second' WHERE id = $1", third["id"])
    assert asyncio.run(expire_due(settings)) >= 1
    assert prizes_of(channel, draw_id)[winners[2]["key"]]["status"] == "expired"
    after = auditor.request("GET", "/v1/admin/prize-ledger?limit=1000").json()
    assert after["ok"], after["checks"]
    assert after["totals"]["expired"] - t["expired"] >= third["amount_fen"]
    assert after["totals"]["outstanding"] <= t["outstanding"] - third["amount_fen"]


async def expire_due(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.stores.database_url)
    try:
        async with conn.transaction():
            return await prizes.expire_due(conn, dt.datetime.now(dt.UTC), "test")
    finally:
        await conn.close()


def test_with_a_payout_hold_every_entry_is_verified_again_and_a_reversed_or_changed_one_is_never_fed(
    settings: Settings, stack: Any, channel: SignedClient, draw: SignedClient, sql: Any, wait_for: Any, tmp_path: Path
) -> None:
    held = tmp_path / "held.toml"
    text = Path(settings.campaign_file).read_text(encoding="utf-8")
    held.write_text(text.replace("payout_hold_s = 0", "payout_hold_s = 1").replace('"winners"', '"all"'), "utf-8")
    worker = config.replace(settings, campaign_file=str(held))
    rng = random.Random()
    reversed_, changed, kept = (sample.invoice(rng) for _ in range(3))
    keys = [r["key"] for r in channel.upload([reversed_, changed, kept]).json()["results"]]
    asyncio.run(asyncio.wait_for(run_worker(worker, burst=True, handle_signals=False), 120))
    waiting = sql("SELECT key FROM feed_entries WHERE key = ANY($1) AND reverify_at IS NOT NULL", keys)
    assert sorted(r["key"] for r in waiting) == sorted(keys)  # judged eligible, waiting out the hold

    reversals = [{"number": reversed_["number"]}, {"number": changed["number"], "amount": "1.00"}]
    assert httpx.post(f"http://127.0.0.1:{stack.sim_port}/sandbox/reverse", json={"invoices": reversals}).is_success
    wait_for(
        lambda: sql("SELECT now() > max(reverify_at) AS due FROM feed_entries WHERE key = ANY($1)", keys)[0]["due"], 10
    )
    asyncio.run(asyncio.wait_for(run_worker(worker, burst=True, handle_signals=False), 120))

    statuses = {k: channel.status(k).json() for k in keys}
    assert (statuses[keys[0]]["status"], statuses[keys[0]]["reason"]) == ("reversed", "reversed_at_reverification")
    assert (statuses[keys[1]]["status"], statuses[keys[1]]["reason"]) == ("ineligible", "changed_at_reverification")
    assert statuses[keys[2]]["status"] == "eligible"
    fed = {e["key"]: e["kind"] for b in read_whole_feed(draw) for e in b["entries"] if e["key"] in keys}
    assert fed == {keys[2]: "add"}


def test_an_instant_draw_decides_entries_as_they_are_fed_within_its_budget_and_verifies(
    settings: Settings, channel: SignedClient, drain: Any, wait_for: Any, tmp_path: Path
) -> None:
    camp = campaigns.load(settings.campaign_file)
    drawer = service.Service(config.replace(settings, draw_dir=str(tmp_path / "draws"), draw_settle_s=1.0), camp)
    draw_id = f"i-{uuid.uuid4().hex[:12]}"
    drain()  # what earlier tests left queued is sealed before the window opens
    opens = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    drawer.commit(draw_id, "instant", opens, opens + dt.timedelta(seconds=10), "")
    wait_for(lambda: dt.datetime.now(dt.UTC) > opens, 10)
    rng = random.Random()
    keys = {r["key"] for r in channel.upload([sample.invoice(rng) for _ in range(60)]).json()["results"]}
    drain()
    result = drawer.follow(draw_id)  # returns once the window has closed
    assert result["entries"] >= len(keys)
    budget = camp.draw.instant.daily_budget_fen
    assert sum(w["amount_fen"] for w in result["winners"]) <= budget
    assert {w["key"] for w in result["winners"]} <= keys
    won = prizes_of(channel, draw_id)
    assert sorted(p["id"] for p in won.values()) == sorted(w["prize_id"] for w in result["winners"])
    archive = drawer.archive(tmp_path / "auditor" / "feed").parent
    published = tmp_path / "auditor" / "result.json"
    published.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    key = service.public_jwk(service.load_key(settings.draw.key_file))["x"]
    done = verify_elsewhere(tmp_path / "auditor", published, archive, key)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK: the draw holds"), done.stdout + done.stderr


def test_the_ledger_is_append_only_and_the_command_reconciles_it(settings: Settings, stack: Any, sql: Any) -> None:
    budget = campaigns.load(settings.campaign_file).draw.budget_fen  # a row at least, and the campaign's budget
    held = sql("SELECT coalesce(sum(amount_fen), 0) AS fen FROM prize_ledger WHERE movement = 'budget'")[0]["fen"]
    sql(
        "INSERT INTO prize_ledger (movement, amount_fen, cause, actor) VALUES ('budget', $1, 'test', 'test')",
        budget - held,
    )
    for change in ("UPDATE prize_ledger SET amount_fen = 1", "DELETE FROM prize_ledger", "TRUNCATE prize_ledger"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            sql(change)
    env = {k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")} | {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "gateway"), "prize-ledger"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stdout + done.stderr
