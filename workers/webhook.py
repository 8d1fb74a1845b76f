"""A channel's webhook: its change feed (gateway/events.py) pushed to a URL of its own, by the outbox relay
(workers/relay.py) with this module as the wire format.

The outbox records are written by a trigger in the transaction that writes each event (migration 080), one per
event, for the destination ``webhook:<channel>``. A request is ``POST <url>`` with
``{"channel", "campaign", "events": [event, ...]}``, each event exactly as ``GET /v1/events`` gives it
(``cursor``, ``key``, ``status``, ``at`` and ``reason`` or ``batch_seq``); ``id`` is the event's cursor, the
idempotency id: an event may come twice (at least once), never changed. Events of one invoice come in order.

The request is signed as a channel signs its own (SPEC.md, "Authentication"), with the channel's own secret and
``X-Client-Id`` the gateway's export id (``GATEWAY_EXPORT_CLIENT_ID``): the channel checks it with the secret it
already holds. Any 2xx answer takes the whole batch; 429 and 503 with ``Retry-After`` are honoured; another 4xx
than 429 parks the batch with the answer as its reason (``gateway-worker outbox parked --destination
webhook:<channel>``, ``... resend``); anything else is tried again with backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from workers.national import Result, Row

PREFIX = "webhook:"


def destination(channel: str) -> str:
    return PREFIX + channel


class Webhook:
    """The wire format of one channel's webhook (a relay adapter, as workers/national.py is)."""

    PATH = ""  # the channel's URL is whole

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def records(self, row: Row, campaign: str) -> list[dict[str, Any]]:
        """One record per outbox row: the event, its cursor as its id."""
        if row.kind != "event":
            raise ValueError(f"a webhook carries events, not {row.kind!r}")
        return [{"id": row.record["cursor"], **row.record}]

    def request_body(self, sender: str, campaign: str, batch: Sequence[dict[str, Any]]) -> bytes:
        return orjson.dumps({"channel": self.channel, "campaign": campaign, "events": list(batch)})

    def results(self, answer: bytes, sent: Sequence[str]) -> dict[str, Result]:
        """A 2xx takes every event sent, whatever its body."""
        return {i: Result(i, "accepted") for i in sent}
