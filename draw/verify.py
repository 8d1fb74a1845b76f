"""``draw verify``: re-derive a published draw from the feed and say whether it holds, naming the first thing that
does not. The standard library only: an auditor needs Python, this folder, the result and the feed (the API, or
an archive folder of JSON lines).

In order, each step trusting only what the ones before it established: the result's form; its signature (with
the draw key the auditor was given, or the one the gateway recorded with the commitment); its secret against the
commitment, and the commitment against the gateway's record and the window (committed before the window closed,
an instant draw's before it opened); the feed's hash chain, batch by batch; the window's batches (first, last,
the last one's hash); the seed; then every winner, in order, re-derived from the entries by the rule
(draw/rule.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from draw import feed, rule
from draw.result import FORMAT, signature_problem


class Verdict:
    """What a verification found: ``lines`` to show, and the first ``problem`` (None: the draw holds)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.problem: str | None = None

    def say(self, line: str) -> None:
        self.lines.append(line)

    def fail(self, problem: str) -> Verdict:
        self.problem = problem
        self.lines.append(f"FAILED: {problem}")
        return self


def verify(
    result: dict[str, Any],
    batches: Sequence[dict[str, Any]],
    public_key: str | None = None,
    recorded: dict[str, Any] | None = None,
) -> Verdict:
    """Check ``result`` against ``batches`` (the feed, oldest first), the draw key (base64url) and the draw as the
    gateway recorded it (GET /v1/draws/{id}), when given."""
    v = Verdict()
    try:
        return _verify(v, result, batches, public_key, recorded)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return v.fail(f"not a result of format {FORMAT}: {type(exc).__name__} {exc}")


def _verify(
    v: Verdict,
    result: dict[str, Any],
    batches: Sequence[dict[str, Any]],
    public_key: str | None,
    recorded: dict[str, Any] | None,
) -> Verdict:
    if result.get("format") != FORMAT:
        return v.fail(f"format {result.get('format')!r}, not {FORMAT}")
    v.say(f"draw {result['draw_id']} ({result['kind']}) of {result['campaign']}, window {_window(result)}")
    problem = _signed(v, result, public_key, recorded) or _committed(v, result, recorded)
    problem = problem or _feed(v, result, batches) or _seed(v, result)
    if problem:
        return v.fail(problem)
    found, considered, voided = rule.winners(result, batches)
    if (considered, voided) != (result["entries"], result["voided"]):
        published = f"{result['entries']} and {result['voided']}"
        return v.fail(f"{considered} entries and {voided} voided keys, not the {published} published")
    problem = first_difference(result["winners"], found)
    if problem:
        return v.fail(problem)
    v.say(
        f"winners: {len(found)} re-derived from {considered} entries ({voided} voided keys left out), each as published"
    )
    v.say("OK: the draw holds")
    return v


def _window(result: dict[str, Any]) -> str:
    w = result["window"]
    return f"{w['from']} to {w['to']}"


def _signed(v: Verdict, result: dict[str, Any], public_key: str | None, recorded: dict[str, Any] | None) -> str | None:
    key = public_key or (recorded or {}).get("public_key")
    if key is None:
        key = result["signature"]["public_key"]
        v.say(
            "signature: checked with the key the result names itself (give --key, or --api, to check it is the draw's)"
        )
    problem = signature_problem(result, key)
    if problem is None:
        v.say(f"signature: Ed25519, draw key {key}: valid")
    return problem


def _committed(v: Verdict, result: dict[str, Any], recorded: dict[str, Any] | None) -> str | None:
    if rule.commitment(result["secret"]) != result["commitment"]:
        return "the secret's SHA-256 is not the commitment"
    if recorded is not None:
        named = ("commitment", "kind", "window", "committed_at")
        mine = (
            result["commitment"],
            result["kind"],
            {k: result["window"][k] for k in ("from", "to")},
            result["committed_at"],
        )
        if mine != tuple(recorded[k] for k in named):
            return "the result's commitment, kind, window or commitment time is not what the gateway recorded"
    instant = result["kind"] == "instant"
    closes, at = result["window"]["from" if instant else "to"], result["committed_at"]
    if not dt.datetime.fromisoformat(at) < dt.datetime.fromisoformat(closes):
        return f"committed at {at}, not before the window {'opened' if instant else 'closed'} ({closes})"
    v.say(f"commitment {result['commitment'][:16]}... = SHA-256(secret), recorded {at}, before {closes}")
    return None


def _feed(v: Verdict, result: dict[str, Any], batches: Sequence[dict[str, Any]]) -> str | None:
    """The chain, then the window's batches as the result names them."""
    broken = feed.broken_link(batches)
    if broken:
        return broken
    w = result["window"]
    if not batches or batches[-1]["seq"] < w["voids_through_seq"]:
        return f"the feed given ends at batch {batches[-1]['seq'] if batches else 0}, before {w['voids_through_seq']}"
    start, end = dt.datetime.fromisoformat(w["from"]), dt.datetime.fromisoformat(w["to"])
    inside = [b["seq"] for b in feed.window(batches, start, end)]
    if inside != list(range(w["first_seq"], w["last_seq"] + 1)):
        span = f"{inside[0]}..{inside[-1]}" if inside else "none"
        return f"the window's batches are {span} in the feed, not {w['first_seq']}..{w['last_seq']} as published"
    last = next(b for b in batches if b["seq"] == w["last_seq"])
    if last["sha256"] != w["last_sha256"]:
        return f"batch {w['last_seq']}'s hash is {last['sha256'][:16]}..., not the published {w['last_sha256'][:16]}..."
    span = f"{w['first_seq']}..{w['last_seq']}"
    v.say(f"feed: {len(batches)} batches chained; the window holds {span}, the last {w['last_sha256'][:16]}...")
    return None


def _seed(v: Verdict, result: dict[str, Any]) -> str | None:
    if result["kind"] == "instant":
        seed = rule.instant_seed(result["secret"], result["draw_id"])
    else:
        value = result["randomness"]["value"]
        seed = rule.periodic_seed(result["secret"], result["window"]["last_sha256"], value)
        v.say(f"randomness: {result['randomness']['source'] or 'none named'} = {value!r}")
    if seed != result["seed"]:
        return f"the seed is {seed[:16]}..., not the published {result['seed'][:16]}..."
    v.say(f"seed {seed[:16]}... re-derived")
    return None


def first_difference(published: Sequence[dict[str, Any]], derived: Sequence[dict[str, Any]]) -> str | None:
    """The first winner that differs between the published list and the re-derived one, said plainly."""
    for n, (p, d) in enumerate(zip(published, derived, strict=False), 1):
        if p != d:
            return (
                f"winner {n}: published {p.get('prize_id')} {p.get('tier')} to {p.get('key')},"
                f" re-derived {d['prize_id']} {d['tier']} to {d['key']}"
            )
    if len(published) != len(derived):
        return f"{len(published)} winners published, {len(derived)} re-derived"
    return None
