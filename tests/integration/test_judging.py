"""Judging on the verified data: the tax system's records (registered with the simulator) against the uploads;
risk rules holding invoices for review; the review itself; the blacklist command."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from deploy import devstack
from loadtest import sample
from loadtest.client import SignedClient
from tests.conftest import signed
from tests.integration.test_pipeline import read_whole_feed, recompute_chain


@pytest.fixture
def admin(base_url: str) -> Iterator[SignedClient]:
    yield from signed(base_url, "demo-admin")


def register(stack: Any, *records: dict[str, Any]) -> None:
    """Put invoices in the simulated tax system's records, as their sellers issued them."""
    resp = httpx.post(f"http://127.0.0.1:{stack.sim_port}/sandbox/invoices", json=list(records))
    assert resp.status_code == 200, resp.text


def as_issued(inv: dict[str, Any], **changes: Any) -> dict[str, Any]:
    record = {k: inv[k] for k in ("number", "issue_date", "amount", "seller_tax_id", "buyer_name", "category")}
    return {**record, **changes}


def load_blacklist(stack: Any, path: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(devstack.VENV_BIN / "gateway-worker"), "blacklist", "load", str(path), "--by", "risk-team"]
    return subprocess.run(argv, env=stack.env, capture_output=True, text=True)


def decide(admin: SignedClient, key: str, decision: str, note: str = "checked by phone") -> httpx.Response:
    body = orjson.dumps({"decision": decision, "note": note})
    return admin.request("POST", f"/v1/admin/held/{key}", body, {"Content-Type": "application/json"})


def test_each_fact_the_tax_system_contradicts_or_the_campaign_excludes_has_its_reason(
    stack: Any, channel: SignedClient, draw: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    cases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for reason, changes in {
        "seller_mismatch": {"seller_tax_id": sample.seller_tax_id(rng)},
        "buyer_name_mismatch": {"buyer_name": "李四"},
        "excluded_invoice_kind": {"kind": "on_behalf"},
        "buyer_not_natural_person": {"buyer_kind": "organisation", "buyer_name": "张三"},
        "category_not_eligible": {"category": "wholesale"},
        "amount_mismatch": {"amount": "99999.00"},
    }.items():
        inv = sample.invoice(rng)
        cases[reason] = (inv, as_issued(inv, **changes))
    for kind in ("fixed_amount", "purchase"):
        inv = sample.invoice(rng)
        cases[f"excluded_invoice_kind/{kind}"] = (inv, as_issued(inv, kind=kind))
    fine = sample.invoice(rng)
    register(stack, *(record for _, record in cases.values()), as_issued(fine))
    results = channel.upload([inv for inv, _ in cases.values()] + [fine]).json()["results"]
    assert {r["status"] for r in results} == {"accepted"}
    drain()
    for (reason, _), r in zip(cases.items(), results, strict=False):
        got = channel.status(r["key"]).json()
        assert (got["status"], got["reason"]) == ("ineligible", reason.split("/")[0]), reason
    fed = {e["key"] for b in read_whole_feed(draw) for e in b["entries"]}
    assert results[-1]["key"] in fed
    assert not fed & {r["key"] for r in results[:-1]}


def test_a_blacklisted_device_is_held_and_an_admin_releases_or_rejects(
    stack: Any, channel: SignedClient, draw: SignedClient, admin: SignedClient, drain: Any, sql: Any, tmp_path: Path
) -> None:
    rng = random.Random()
    device = f"farm-{rng.randrange(10**9)}"
    listed = tmp_path / "blacklist.csv"
    listed.write_text(f"device,demo-channel:{device},ticket farm seen in another city\n", encoding="utf-8")
    loaded = load_blacklist(stack, listed)
    assert loaded.returncode == 0, loaded.stderr
    farm = [sample.invoice(rng, user={"id": f"u{i}{device}", "device_id": device}) for i in range(3)]
    honest = sample.invoice(rng)
    results = channel.upload([*farm, honest]).json()["results"]
    drain()
    keys = [r["key"] for r in results]
    assert [channel.status(k).json().get("reason") for k in keys[:3]] == ["blacklisted_device"] * 3
    assert {channel.status(k).json()["status"] for k in keys[:3]} == {"held"}
    assert channel.status(keys[3]).json()["status"] == "eligible"

    listed_held = admin.request("GET", "/v1/admin/held?limit=500").json()["held"]
    assert set(keys[:3]) <= {h["key"] for h in listed_held}
    assert "demo-channel:" + device not in str(listed_held)

    assert decide(admin, keys[0], "release").json() == {"key": keys[0], "status": "verified"}
    assert decide(admin, keys[1], "reject", "same device as a known farm").json()["status"] == "ineligible"
    assert decide(admin, keys[0], "reject").status_code == 409  # decided already
    assert decide(admin, "2634" + "0" * 16, "release").status_code == 404
    assert decide(admin, keys[2], "maybe").status_code == 400
    assert channel.request("GET", "/v1/admin/held").status_code == 403  # a channel is no reviewer
    drain()  # seals the released one

    fed = {e["key"] for b in read_whole_feed(draw) for e in b["entries"]}
    assert keys[0] in fed and keys[1] not in fed and keys[2] not in fed
    released = channel.status(keys[0]).json()
    assert [h["status"] for h in released["history"]] == ["accepted", "verified", "held", "verified", "eligible"]
    assert channel.status(keys[1]).json()["reason"] == "rejected_in_review"
    reviews = sql("SELECT key, decision, reviewer, note FROM reviews WHERE key = ANY($1) ORDER BY id", keys)
    assert [(r["key"], r["decision"], r["reviewer"]) for r in reviews] == [
        (keys[0], "release", "demo-admin"),
        (keys[1], "reject", "demo-admin"),
    ]
    recompute_chain(read_whole_feed(draw))


def test_an_upload_far_from_the_city_is_held(channel: SignedClient, drain: Any) -> None:
    rng = random.Random()
    beijing = {"id": f"u{rng.randrange(10**9)}", "device_id": "d-bj", "location": {"lat": 39.9, "lon": 116.4}}
    hefei = {"id": f"u{rng.randrange(10**9)}", "device_id": "d-hf", "location": {"lat": 31.86, "lon": 117.28}}
    keys = [r["key"] for r in channel.upload([sample.invoice(rng, user=u) for u in (beijing, hefei)]).json()["results"]]
    drain()
    assert channel.status(keys[0]).json()["reason"] == "upload_far_from_city"
    assert channel.status(keys[1]).json()["status"] == "eligible"


def test_a_bad_blacklist_file_loads_nothing_and_names_no_id_number(stack: Any, tmp_path: Path, sql: Any) -> None:
    listed = tmp_path / "blacklist.csv"
    good_seller = sample.seller_tax_id(random.Random())
    listed.write_text(f"seller,{good_seller},fake shop\nperson,110105194912310021,bad check digit\n", encoding="utf-8")
    loaded = load_blacklist(stack, listed)
    assert loaded.returncode == 2
    assert "line 2" in loaded.stderr and "110105194912310021" not in loaded.stderr
    assert not sql("SELECT 1 FROM blacklist WHERE value = $1", good_seller)


def test_reversals_are_counted_per_seller(channel: SignedClient, admin: SignedClient, drain: Any) -> None:
    rng = random.Random()
    seller = sample.seller_tax_id(rng)
    sold = [sample.invoice(rng, seller_tax_id=seller) for _ in range(3)]
    keys = [r["key"] for r in channel.upload(sold).json()["results"]]
    drain()
    body = orjson.dumps({"reversals": [{"number": k, "red_number": "2634" + "8" * 16} for k in keys[:2]]})
    assert channel.request("POST", "/v1/reversals", body, {"Content-Type": "application/json"}).status_code == 202
    counts = admin.request("GET", "/v1/admin/reversals-by-seller?days=1").json()["sellers"]
    assert {"seller_tax_id": seller, "reversed": 2} == {
        k: v for k, v in next(c for c in counts if c["seller_tax_id"] == seller).items() if k != "last_at"
    }
    assert admin.request("GET", "/v1/admin/reversals-by-seller?days=0").status_code == 400


def test_a_held_invoice_reversed_stays_out_of_the_feed_and_cannot_be_released(
    channel: SignedClient, draw: SignedClient, admin: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    far = {"id": f"u{rng.randrange(10**9)}", "device_id": "d-far", "location": {"lat": 39.9, "lon": 116.4}}
    key = channel.upload([sample.invoice(rng, user=far)]).json()["results"][0]["key"]
    drain()
    assert channel.status(key).json()["status"] == "held"
    body = orjson.dumps({"reversals": [{"number": key, "red_number": "2634" + "7" * 16}]})
    assert channel.request("POST", "/v1/reversals", body, {"Content-Type": "application/json"}).status_code == 202
    assert channel.status(key).json()["status"] == "reversed"
    assert decide(admin, key, "release").status_code == 409
    drain()
    batches = read_whole_feed(draw)
    recompute_chain(batches)
    assert key not in {e["key"] for b in batches for e in b["entries"]}


def test_blacklist_lines_named_twice_load_once_and_can_be_removed(stack: Any, tmp_path: Path, sql: Any) -> None:
    seller = sample.seller_tax_id(random.Random())
    listed = tmp_path / "blacklist.csv"
    listed.write_text(f"# sellers\nseller,{seller},first\nseller,{seller},second thoughts\n", encoding="utf-8")
    assert load_blacklist(stack, listed).returncode == 0
    assert [(r["reason"], r["added_by"]) for r in sql("SELECT * FROM blacklist WHERE value = $1", seller)] == [
        ("second thoughts", "risk-team")
    ]
    argv = [str(devstack.VENV_BIN / "gateway-worker"), "blacklist", "remove", str(listed), "--by", "risk-team"]
    removed = subprocess.run(argv, env=stack.env, capture_output=True, text=True)
    assert removed.returncode == 0 and "remove: 1 entries" in removed.stdout
    assert not sql("SELECT 1 FROM blacklist WHERE value = $1", seller)


def test_a_rejected_invoice_gives_its_cap_slot_back_and_a_held_one_keeps_it(
    channel: SignedClient, admin: SignedClient, drain: Any
) -> None:
    rng = random.Random()
    far = {"id": f"u{rng.randrange(10**9)}", "device_id": "d-far", "location": {"lat": 39.9, "lon": 116.4}}
    keys = [r["key"] for r in channel.upload([sample.invoice(rng, user=far) for _ in range(2)]).json()["results"]]
    drain()
    assert {channel.status(k).json()["status"] for k in keys} == {"held"}
    third = channel.upload([sample.invoice(rng, user=far)]).json()["results"][0]
    assert third.get("reason") == "person_daily_cap"  # both held invoices keep their slots
    assert decide(admin, keys[0], "reject", "fake receipt").status_code == 200
    assert channel.upload([sample.invoice(rng, user=far)]).json()["results"][0]["status"] == "accepted"
