"""``POST /v1/invoices``: the upload's stages in order, each a module of its own:

auth (gateway/auth.py) -> parse (gateway/parse.py) -> validate (gateway/validate.py) -> admit
(gateway/admit.py) -> enqueue (gateway/enqueue.py); then 202 with a result per invoice. The request's tally for
the daily reports (gateway/tally.py) rides in the enqueue's own round trip.
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.metrics import keep
from gateway import admit, auth, enqueue, metrics, parse, validate
from gateway import tally as tallies
from gateway.deps import deps


async def upload(request: Request) -> Response:
    d = deps(request)
    api = d.settings.api
    now = time.time()
    client = auth.check_headers(request, d.clients, now, api.clock_skew_s)
    body = await parse.read_limited(request, api.max_body_bytes)
    auth.check_signed(request, client, body)
    auth.check_role(client, "channel")
    # The nonce is spent in the rate-limit call (one round trip for both), after decoding: a body that does not
    # decode is refused (400) whoever sends it again.
    nonce = auth.request_nonce(request, client, api.nonce_ttl_s)
    msgpack = parse.media(request.headers.get("content-type", ""))
    lenient = d.campaign.uploads.unknown_fields == "ignore"
    invoices = parse.decode(body, msgpack, api.max_invoices, lenient)
    channel, now_ms = client.client_id, int(now * 1000)
    request_id = getattr(request.state, "request_id", None) or os.urandom(12).hex()  # set by the access log
    going, results = validate.validate(invoices, d.campaign, channel, d.settings.secrets.person_secret, now_ms, msgpack)
    valid_fen = {i: q.amount_fen for i, q in going}
    # The tally if admission refuses nothing: the claim made in admission's call carries it (gateway/together.py).
    tally, industries = tallies.pre_claim(invoices, results, d.campaign, msgpack, valid_fen)
    decided = len(results)
    # What the claim takes, packed once: for the one call, and for the claim after it when nothing was refused.
    items = enqueue.claim_items(going, industries) if d.together.takes(len(going)) else None
    claim = d.claimer.first_call(channel, now_ms, request_id, items, tally) if items else None
    admitted = await admit.admit(
        channel,
        len(invoices),
        going,
        results,
        nonce,
        ratelimiter=d.ratelimiter,
        caps=d.caps,
        redis=d.redis,
        timeout_s=api.ratelimit_timeout_ms / 1000,
        together=d.together,
        claim=claim,
    )
    if len(results) != decided:  # admission refused some: the tally says so (and then nothing was claimed yet)
        tally, industries = tallies.pre_claim(invoices, results, d.campaign, msgpack, valid_fen)
    accepted = await enqueue.enqueue(
        channel,
        request_id,
        now_ms,
        admitted,
        results,
        claimer=d.claimer,
        caps=d.caps,
        signer=d.signer,
        tally=tally,
        industries=industries,
        packed=items,
    )
    d.admission.spent(channel, accepted)
    answers = [results[i] for i in range(len(invoices))]
    _count(channel, answers)
    admit.answer_with(request, admit.headers(d.ratelimiter, channel, admitted.decision))
    return Response(
        orjson.dumps({"request_id": request_id, "results": answers}), status_code=202, media_type="application/json"
    )


def _count(channel: str, results: list[dict[str, Any]]) -> None:
    if len(results) == 1:
        r = results[0]
        _invoices(channel, r["status"], r.get("reason", "")).inc()
        return
    tally = Counter((r["status"], r.get("reason", "")) for r in results)
    for (status, reason), n in tally.items():
        _invoices(channel, status, reason).inc(n)


@functools.lru_cache(maxsize=4096)
def _invoices(channel: str, status: str, reason: str) -> Any:
    """The outcome's counter, looked up once (``labels()`` cost more than the increment): channels, outcomes and
    reasons are few. Its updates are kept in the process and written each second (core/metrics.py)."""
    return keep(metrics.INVOICES.labels(channel, status, reason))
