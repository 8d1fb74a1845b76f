"""Stages 4 and 5 of an upload, deduplication and durable enqueue: the admitted invoices are claimed across all
channels and the new ones enqueued in one atomic Redis step per intake shard (dedup/claim.py), then answered
``accepted`` with a receipt, or ``duplicate``. Fails closed: without Redis nothing is accepted (503).

A duplicate of another person's upload gives back the cap slot it took at admission; a channel's own earlier
upload (or a retry after a lost answer) gets its receipt again. With replicated acknowledgement, an upload whose
replicas did not acknowledge in time is answered 503, and its retry is answered ``accepted`` with the receipt of
the first upload's time (dedup/claim.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core import contract
from core.acks import NotReplicated
from core.contract import Queued
from core.errors import STORE_ERRORS, StoreUnavailable
from dedup.claim import Claimer, Item
from dedup.inflight import PERSON_TAG
from gateway import metrics
from gateway.admit import Admitted, Going, Results
from gateway.receipts import Signer
from ratelimit.caps import Caps

log = logging.getLogger(__name__)


async def enqueue(
    channel: str,
    request_id: str,
    now_ms: int,
    admitted: Admitted,
    results: Results,
    *,
    claimer: Claimer,
    caps: Caps,
    signer: Signer,
    tally: bytes = b"",
    industries: Sequence[str] = (),
    packed: list[Item] | None = None,
) -> int:
    """Claim and enqueue the admitted invoices, answering each in ``results``; returns how many were accepted.
    ``tally`` and ``industries`` (by index): the request's tally for the daily reports (gateway/tally.py), which
    rides in the claim's entries, or in an entry of its own when nothing is claimed (fails closed like a claim).
    ``packed``: ``claim_items`` of the invoices before admission, used when admission refused none of them."""
    if not admitted.going:
        await _tally_alone(claimer, channel, now_ms, request_id, tally)
        return 0
    if packed is None or len(packed) != len(admitted.going):  # admission keeps the order of those it lets on
        packed = claim_items(admitted.going, industries)
    try:
        owners = await claimer.claim_and_enqueue(channel, now_ms, request_id, packed, tally, admitted.claimed)
    except NotReplicated as exc:
        # Queued on the primary only: not the promise of ``accepted``. The claims wait for the retry, which
        # takes them back as this channel's own (accepted, with the receipt of this upload's time).
        raise StoreUnavailable("the intake queue's replicas did not acknowledge in time") from exc
    except STORE_ERRORS as exc:
        # The outcome is unknown (some shards may have enqueued): the slots stay held. A retry finds them
        # "held" and takes no new ones; an invoice never sent again costs its person one slot.
        raise StoreUnavailable("the intake queue cannot take invoices now") from exc
    accepted = 0
    refunds = []
    proven: list[tuple[int, str, int]] = []  # (index, key, accepted at): what gets a receipt
    for (i, q), owner, reserved in zip(admitted.going, owners, admitted.reservations, strict=True):
        if owner is None or owner.retaken:  # new, or this channel's upload answered 503 before (its time)
            results[i] = {"index": i, "key": q.key, "status": "accepted"}
            proven.append((i, q.key, now_ms if owner is None else owner.accepted_at_ms))
            accepted += 1
            continue
        results[i] = {"index": i, "key": q.key, "status": "duplicate"}
        if owner.channel == channel and owner.accepted_at_ms:
            proven.append((i, q.key, owner.accepted_at_ms))
        if reserved == "new" and owner.person != q.person[:PERSON_TAG]:
            refunds.append(q)
    signed = signer.receipts(channel, [(key, at) for _, key, at in proven])
    for i, key, _ in proven:
        results[i]["receipt"] = signed[key]
    await _give_back(caps, refunds)
    return accepted


def claim_items(going: Going, industries: Sequence[str] = ()) -> list[Item]:
    """What the claim takes of each invoice going on: its key, the invoice packed for the workers, its person,
    its industry (by the request's index; "other" without)."""
    return [Item(q.key, contract.pack(q), q.person, industries[i] if industries else "other") for i, q in going]


async def _tally_alone(claimer: Claimer, channel: str, now_ms: int, request_id: str, tally: bytes) -> None:
    """The tally of a request that claims nothing, in an entry of its own; fails closed like a claim."""
    if not tally:
        return
    try:
        await claimer.tally_only(channel, now_ms, request_id, tally)
    except STORE_ERRORS as exc:
        raise StoreUnavailable("the intake queue cannot take this request now") from exc


async def _give_back(caps: Caps, invoices: list[Queued]) -> None:
    """Best effort: the invoices' answers stand whatever happens here; a slot not given back is counted."""
    if not invoices:
        return
    try:
        await caps.release(invoices)
    except STORE_ERRORS:
        metrics.CAP_RELEASE_FAILED.inc(len(invoices))
        log.warning("could not give back %d cap slots", len(invoices))
