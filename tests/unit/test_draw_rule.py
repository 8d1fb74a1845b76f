"""The draw's rule (draw/rule.py) and ``draw verify`` (draw/verify.py) on a feed made here: winners follow from
the seed alone, and any change to the result or the feed is named."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from draw import feed, rule
from draw.result import b64url, document, signed_text
from draw.service import public_jwk
from draw.verify import verify

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 9, 0, 0, tzinfo=dt.UTC)
SECRET = "11" * 32


def entry(n: int, kind: str = "add", person: int | None = None, category: str = "catering") -> dict[str, Any]:
    return {
        "key": f"k{n:04d}",
        "kind": kind,
        "person": f"p{n if person is None else person}",
        "category": category,
        "amount_fen": 10000 + n,
    }


def chain(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sealed batches of these entries, one a minute from T0, linked as SPEC.md's chain."""
    batches, prev = [], feed.GENESIS
    for seq, entries in enumerate(groups, 1):
        b = {"seq": seq, "prev_sha256": prev, "count": len(entries), "entries": entries}
        b["sealed_at"] = (T0 + dt.timedelta(minutes=seq)).isoformat()
        b["sha256"] = prev = feed.batch_sha256(b)
        batches.append(b)
    return batches


RULES = {
    "tiers": [{"name": "first", "count": 1, "amount_fen": 80000}, {"name": "second", "count": 2, "amount_fen": 20000}],
    "max_wins_per_person": 1,
    "categories": ["catering"],
}


def published(batches: list[dict[str, Any]], key: Ed25519PrivateKey, to_minute: int = 3) -> dict[str, Any]:
    """A periodic draw's signed result over the batches sealed before ``to_minute`` (not the last one)."""
    record = {
        "draw_id": "d1",
        "kind": "periodic",
        "window": {"from": T0.isoformat(), "to": (T0 + dt.timedelta(minutes=to_minute, seconds=30)).isoformat()},
        "commitment": rule.commitment(SECRET),
        "committed_at": (T0 - dt.timedelta(hours=1)).isoformat(),
        "feed_head_seq": 0,
        "randomness": "drand round 1",
        "public_key": public_jwk(key)["x"],
    }
    inside = [b for b in batches if b["seq"] <= to_minute]
    seed = rule.periodic_seed(SECRET, inside[-1]["sha256"], "ab12")
    span = {
        "first_seq": 1,
        "last_seq": to_minute,
        "first_prev_sha256": feed.GENESIS,
        "last_sha256": inside[-1]["sha256"],
        "voids_through_seq": batches[-1]["seq"],
    }
    draft = {"draw_id": "d1", "kind": "periodic", "seed": seed, "rules": RULES, "window": span}
    found, considered, voided = rule.winners(draft, batches)
    doc = document(
        campaign="c",
        draw=record,
        window=span,
        secret=SECRET,
        randomness="ab12",
        seed=seed,
        rules=RULES,
        counted=(considered, voided),
        winners=found,
        drawn_at=T0.isoformat(),
    )
    signature = {"alg": "Ed25519", "public_key": record["public_key"], "value": b64url(key.sign(signed_text(doc)))}
    return {**doc, "signature": signature}


def feed_of_twelve() -> list[dict[str, Any]]:
    """Three batches of eligible entries (one not of an eligible kind, two of one person), then a void of k0001."""
    return chain(
        [
            [entry(n) for n in range(1, 5)] + [entry(5, category="fuel")],
            [entry(n) for n in range(6, 10)] + [entry(10, person=6)],
            [entry(n) for n in range(11, 13)],
            [entry(1, kind="void")],
        ]
    )


def test_a_good_draw_holds_and_its_winners_follow_the_rule() -> None:
    batches, key = feed_of_twelve(), Ed25519PrivateKey.generate()
    result = published(batches, key)
    v = verify(result, batches, public_jwk(key)["x"])
    assert v.problem is None, v.lines
    assert (result["entries"], result["voided"]) == (10, 1)  # 11 eligible adds, k0001 voided later
    winners = result["winners"]
    assert [w["tier"] for w in winners] == ["first", "second", "second"]
    assert [w["prize_id"] for w in winners] == ["d1:1", "d1:2", "d1:3"]
    assert len({w["person"] for w in winners}) == 3 and "k0001" not in {w["key"] for w in winners}
    scores = [w["score"] for w in winners]
    assert scores == sorted(scores)  # smallest HMAC first, a person's second entry skipped
    assert scores == [rule.score(result["seed"], w["key"]).hex() for w in winners]


def test_a_changed_feed_entry_fails_at_its_batch() -> None:
    batches, key = feed_of_twelve(), Ed25519PrivateKey.generate()
    result = published(batches, key)
    changed = copy.deepcopy(batches)
    changed[1]["entries"][0]["amount_fen"] += 1
    v = verify(result, changed, public_jwk(key)["x"])
    assert v.problem is not None and v.problem.startswith("batch 2: its entries hash to")
    dropped = copy.deepcopy(batches)
    del dropped[1]["entries"][2]
    dropped[1]["count"] -= 1
    dropped[1]["sha256"] = feed.batch_sha256(dropped[1])  # re-hashed: the next batch's link breaks
    assert verify(result, dropped, public_jwk(key)["x"]).problem == (
        f"batch 3: its prev_sha256 {batches[2]['prev_sha256'][:16]}... is not batch 2's hash"
    )


def test_a_changed_result_is_named() -> None:
    batches, key = feed_of_twelve(), Ed25519PrivateKey.generate()
    result = published(batches, key)
    swapped = copy.deepcopy(result)
    swapped["winners"][0]["key"] = "k0012"
    assert verify(swapped, batches, public_jwk(key)["x"]).problem == (
        "the signature does not match the result: changed since it was signed"
    )
    other = Ed25519PrivateKey.generate()
    assert "not the draw's key" in str(verify(result, batches, public_jwk(other)["x"]).problem)
    resigned = copy.deepcopy(swapped)  # signed again by the draw's key: the rule still tells
    resigned["signature"]["value"] = b64url(key.sign(signed_text(resigned)))
    problem = verify(resigned, batches, public_jwk(key)["x"]).problem
    assert problem is not None and problem.startswith("winner 1: published d1:1 first to k0012, re-derived d1:1")
    secret = copy.deepcopy(result)
    secret["secret"] = "22" * 32
    secret["signature"]["value"] = b64url(key.sign(signed_text(secret)))
    assert verify(secret, batches, public_jwk(key)["x"]).problem == "the secret's SHA-256 is not the commitment"


def test_a_commitment_after_the_window_closed_is_refused() -> None:
    batches, key = feed_of_twelve(), Ed25519PrivateKey.generate()
    late = published(batches, key)
    late["committed_at"] = late["window"]["to"]
    late["signature"]["value"] = b64url(key.sign(signed_text(late)))
    assert "not before the window closed" in str(verify(late, batches, public_jwk(key)["x"]).problem)


def test_more_prizes_than_entries_awards_what_there_is() -> None:
    entries = [rule.Entry(f"k{n}", f"p{n}", "catering", 100, 1) for n in range(2)]
    tiers = [rule.Tier("first", 1, number=1), rule.Tier("second", 1, number=5)]
    found = rule.periodic_winners("d", "00" * 32, entries, tiers, 1)
    assert [w["tier"] for w in found] == ["first", "second"]


def test_instant_wins_follow_the_odds_and_stop_at_the_budget() -> None:
    fed = [rule.Entry(f"k{n}", f"p{n}", "catering", 100, 1) for n in range(4000)]
    tiers = [rule.Tier("big", 500, odds=Fraction(1, 100)), rule.Tier("small", 100, odds=Fraction(1, 10))]
    seed = rule.instant_seed(SECRET, "day-1")
    unlimited = rule.instant_winners("day-1", seed, fed, tiers, 1, 10**9)
    big = sum(w["tier"] == "big" for w in unlimited)
    small = len(unlimited) - big
    assert 20 <= big <= 65 and 320 <= small <= 480  # 40 and 400 expected: far outside is a broken rule
    capped = rule.instant_winners("day-1", seed, fed, tiers, 1, 5000)
    assert sum(w["amount_fen"] for w in capped) <= 5000
    assert sum(w["amount_fen"] for w in capped) > 5000 - 500  # the budget is used up to its last prize
    assert rule.instant_winners("day-1", seed, fed, tiers, 1, 5000) == capped  # reproducible


def test_verify_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    """Also with a key whose base64url begins with "-" (one in 64), given as --key=X: it failed a fresh clone's
    run once, when passed as two arguments."""
    batches, key = feed_of_twelve(), Ed25519PrivateKey.generate()
    while not public_jwk(key)["x"].startswith("-"):
        key = Ed25519PrivateKey.generate()
    folder = tmp_path / "feed"
    feed.write_folder(folder, batches)
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(published(batches, key)), encoding="utf-8")
    argv = [sys.executable, "-S", "-m", "draw", "verify", "--result", str(result_file), "--feed", str(folder)]
    done = subprocess.run([*argv, "--key=" + public_jwk(key)["x"]], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("OK: the draw holds")
