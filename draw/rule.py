"""The draw's rules (docs/draw.md): how a seed is made, how entries are ranked and how winners follow, for the
draw service and for anyone who checks it. The standard library only: an auditor runs ``draw verify`` with
Python and this folder, nothing else.

Periodic draws: the entries are the ``add`` entries of the window's batches whose category is eligible, less the
keys voided in the feed up to ``voids_through_seq``; each is ranked by HMAC-SHA256(seed, key), smallest first
(bytes compared as unsigned, the key breaking a tie); the tiers are walked in order, top prize first, each taking
the next ``count`` entries in rank whose person has not yet won ``max_wins_per_person`` prizes of the draw.

Instant draws: each eligible ``add`` entry of the window's batches, in feed order (batch, then place in it), is
given u = the first 8 bytes of HMAC-SHA256(seed, key) as a big-endian integer, uniform in [0, 2^64); the tiers
share [0, 1) in order, tier i owning [c_(i-1), c_i) where c_i is the sum of the first i odds: the entry wins tier
i when u / 2^64 falls there (exact fractions, no floating point), if its person has not reached the draw's wins
and the prize fits in what is left of the draw's daily budget.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

SEED = "prize-draw seed v1"
INSTANT_SEED = "prize-draw instant seed v1"
U64 = 2**64


def canonical(value: Any) -> bytes:
    """JSON with keys sorted, no spaces, non-ASCII kept, as UTF-8: what is hashed and signed (docs/hashing.md)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def commitment(secret_hex: str) -> str:
    """What ``draw commit`` publishes: the hex SHA-256 of the secret's bytes."""
    return hashlib.sha256(bytes.fromhex(secret_hex)).hexdigest()


def periodic_seed(secret_hex: str, last_sha256: str, randomness: str) -> str:
    """SHA-256 of the lines "prize-draw seed v1", the secret (hex), the window's last batch hash and the public
    randomness value ("" without one), joined by newlines, as UTF-8; hex."""
    text = "\n".join((SEED, secret_hex, last_sha256, randomness))
    return hashlib.sha256(text.encode()).hexdigest()


def instant_seed(secret_hex: str, draw_id: str) -> str:
    """An instant draw decides as entries are fed, so its seed is the committed secret's alone: SHA-256 of the
    lines "prize-draw instant seed v1", the draw id and the secret (hex)."""
    return hashlib.sha256("\n".join((INSTANT_SEED, draw_id, secret_hex)).encode()).hexdigest()


def score(seed_hex: str, key: str) -> bytes:
    """HMAC-SHA256 with the seed's bytes as key, of the invoice key (UTF-8)."""
    return hmac.new(bytes.fromhex(seed_hex), key.encode(), hashlib.sha256).digest()


class Entry(NamedTuple):
    key: str
    person: str
    category: str
    amount_fen: int
    batch_seq: int


class Tier(NamedTuple):
    name: str
    amount_fen: int
    number: int = 0  # periodic: how many prizes a draw
    odds: Fraction = Fraction(0)  # instant


def eligible(category: str, categories: Sequence[str]) -> bool:
    """An eligible kind: any, without categories; else one the category starts with (as eligibility matches)."""
    return not categories or any(category.startswith(c) for c in categories)


def entries(batches: Iterable[dict[str, Any]], categories: Sequence[str]) -> list[Entry]:
    """The eligible ``add`` entries of these batches, in feed order."""
    return [
        Entry(e["key"], e["person"], e["category"], e["amount_fen"], b["seq"])
        for b in batches
        for e in b["entries"]
        if e["kind"] == "add" and eligible(e["category"], categories)
    ]


def voided(batches: Iterable[dict[str, Any]]) -> set[str]:
    """The keys with a ``void`` entry in these batches."""
    return {e["key"] for b in batches for e in b["entries"] if e["kind"] == "void"}


def winner(prize_id: str, tier: Tier, e: Entry, seed_hex: str) -> dict[str, Any]:
    return {
        "prize_id": prize_id,
        "tier": tier.name,
        "amount_fen": tier.amount_fen,
        "key": e.key,
        "person": e.person,
        "batch_seq": e.batch_seq,
        "score": score(seed_hex, e.key).hex(),
    }


def periodic_winners(
    draw_id: str, seed_hex: str, candidates: Sequence[Entry], tiers: Sequence[Tier], max_wins: int
) -> list[dict[str, Any]]:
    """The winners of a periodic draw, top tier first; prize ids ``<draw id>:1``, ``:2``, ... in that order."""
    ranked = sorted(candidates, key=lambda e: (score(seed_hex, e.key), e.key))
    wins: Counter[str] = Counter()
    found: list[dict[str, Any]] = []
    place = iter(ranked)
    for tier in tiers:
        taken = 0
        while taken < tier.number:
            e = next(place, None)
            if e is None:
                return found  # fewer entries than prizes: the rest is not awarded
            if wins[e.person] >= max_wins:
                continue  # skipped for good: a person's wins only grow
            wins[e.person] += 1
            taken += 1
            found.append(winner(f"{draw_id}:{len(found) + 1}", tier, e, seed_hex))
    return found


def instant_tier(seed_hex: str, key: str, tiers: Sequence[Tier]) -> Tier | None:
    """The instant tier an entry wins, if any."""
    u = Fraction(int.from_bytes(score(seed_hex, key)[:8], "big"), U64)
    low = Fraction(0)
    for tier in tiers:
        if low <= u < low + tier.odds:
            return tier
        low += tier.odds
    return None


class Instant:
    """An instant draw under way: entries are decided as they are fed, in feed order (``take``), the draw's
    wins per person and money spent carried from one to the next."""

    def __init__(self, draw_id: str, seed_hex: str, tiers: Sequence[Tier], max_wins: int, budget_fen: int) -> None:
        self.draw_id, self.seed_hex, self.tiers = draw_id, seed_hex, tiers
        self.max_wins, self.budget_fen = max_wins, budget_fen
        self.wins: Counter[str] = Counter()
        self.spent = 0
        self.found: list[dict[str, Any]] = []

    def take(self, fed: Iterable[Entry]) -> list[dict[str, Any]]:
        """Decide these entries (the next ones of the feed); returns the new winners."""
        new: list[dict[str, Any]] = []
        for e in fed:
            tier = instant_tier(self.seed_hex, e.key, self.tiers)
            if tier is None or self.wins[e.person] >= self.max_wins or self.spent + tier.amount_fen > self.budget_fen:
                continue
            self.wins[e.person] += 1
            self.spent += tier.amount_fen
            new.append(winner(f"{self.draw_id}:{len(self.found) + len(new) + 1}", tier, e, self.seed_hex))
        self.found += new
        return new


def instant_winners(
    draw_id: str, seed_hex: str, fed: Sequence[Entry], tiers: Sequence[Tier], max_wins: int, budget_fen: int
) -> list[dict[str, Any]]:
    """The winners of an instant draw, in feed order, within its budget."""
    return Instant(draw_id, seed_hex, tiers, max_wins, budget_fen).take(fed)


def odds(text: str) -> Fraction:
    """Odds written "p/q" (the campaign's, and the result's), exactly."""
    p, _, q = text.partition("/")
    return Fraction(int(p), int(q))


def tiers_of(rules: dict[str, Any]) -> list[Tier]:
    """The tiers a result's ``rules`` name (``count`` for periodic ones, ``odds`` for instant ones)."""
    return [
        Tier(t["name"], t["amount_fen"], t.get("count", 0), odds(t["odds"]) if "odds" in t else Fraction(0))
        for t in rules["tiers"]
    ]


def winners(result: dict[str, Any], batches: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """The winners a result's own inputs give, from the batches of its window (and, for the voids, up to its
    ``voids_through_seq``): (winners, entries considered, voided keys left out)."""
    w, rules = result["window"], result["rules"]
    window = [b for b in batches if w["first_seq"] <= b["seq"] <= w["last_seq"]]
    fed = entries(window, rules["categories"])
    tiers = tiers_of(rules)
    if result["kind"] == "instant":
        budget = rules["daily_budget_fen"]
        return (
            instant_winners(result["draw_id"], result["seed"], fed, tiers, rules["max_wins_per_person"], budget),
            len(fed),
            0,
        )
    gone = voided(b for b in batches if b["seq"] <= w["voids_through_seq"])
    candidates = [e for e in fed if e.key not in gone]
    found = periodic_winners(result["draw_id"], result["seed"], candidates, tiers, rules["max_wins_per_person"])
    return found, len(candidates), len(fed) - len(candidates)
