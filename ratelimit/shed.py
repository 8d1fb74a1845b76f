"""Load shedding: a fast 503 before the body is read, rather than a queue in the event loop.

Three refusals, all decided from this process's own state (no I/O on the request's path):

- ``in_flight``: the process already handles ``max_in_flight`` requests;
- ``fair_share``: the process is busy (past ``busy_share`` of ``max_in_flight``) and this channel holds more than
  its weighted share of the requests in flight, so that one channel's burst cannot crowd out the others;
- ``pipeline_saturated``: the pipeline behind the gateway is saturated (``PipelineMonitor``) and this channel
  has spent its weighted share of what the workers drain; shares refill at that rate.

The channel is read from ``X-Client-Id`` before authentication, so only refusals use it: a caller who forges
another channel's id is refused at the signature and spends none of that channel's share.
"""

from __future__ import annotations

import time
from collections import Counter

import msgspec

from ratelimit import metrics

ACTIVE_S = 1.0


class SheddingConfig(msgspec.Struct, frozen=True, kw_only=True):
    max_in_flight: int = 256
    busy_share: float = 0.5
    weights: dict[str, float] = {}
    default_weight: float = 1.0


class Bucket:
    """Invoices a channel may still have admitted while the pipeline is saturated (refills at ``rate``/s)."""

    def __init__(self, burst: float) -> None:
        self.tokens = burst
        self.stamp = time.monotonic()

    def refill(self, rate: float, burst: float) -> float:
        now = time.monotonic()
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        return self.tokens


class Admission:
    def __init__(self, config: SheddingConfig) -> None:
        self.config = config
        self.known: set[str] = set(config.weights)  # channels that may name a metric label (bounded)
        self.in_flight = 0
        self.by_channel: Counter[str] = Counter()
        self.saturated = False
        self.drain_per_s = 0.0  # invoices/s the workers drain, this process's part of it
        self.buckets: dict[str, Bucket] = {}
        self.last_seen: dict[str, float] = {}

    def weight(self, channel: str) -> float:
        return self.config.weights.get(channel, self.config.default_weight)

    def share(self, channel: str) -> float:
        """This channel's weighted share among the channels active lately: with a request in flight or seen in
        the last ``ACTIVE_S`` (a channel between two requests still counts, or a flood would take its room)."""
        recent = time.monotonic() - ACTIVE_S
        active = {c for c, at in self.last_seen.items() if at >= recent} | set(self.by_channel) | {channel}
        return self.weight(channel) / sum(self.weight(c) for c in active)

    def refusal(self, channel: str) -> str | None:
        """Why a request of ``channel`` must be shed now, or None to let it in."""
        c = self.config
        if channel in self.known:
            self.last_seen[channel] = time.monotonic()
        if self.in_flight >= c.max_in_flight:
            return "in_flight"
        busy = self.in_flight >= c.max_in_flight * c.busy_share
        if busy and self.by_channel[channel] >= max(1.0, c.max_in_flight * self.share(channel)):
            return "fair_share"
        if self.saturated and self._bucket(channel).refill(*self._rate(channel)) <= 0:
            return "pipeline_saturated"
        return None

    def enter(self, channel: str) -> None:
        self.last_seen[channel] = time.monotonic()
        self.in_flight += 1
        self.by_channel[channel] += 1
        metrics.IN_FLIGHT.inc()

    def leave(self, channel: str) -> None:
        self.in_flight -= 1
        self.by_channel[channel] -= 1
        if self.by_channel[channel] <= 0:
            del self.by_channel[channel]
        metrics.IN_FLIGHT.dec()

    def spent(self, channel: str, invoices: int) -> None:
        """Invoices admitted for ``channel``: while saturated they come out of its share."""
        if self.saturated and invoices:
            bucket = self._bucket(channel)
            bucket.refill(*self._rate(channel))
            bucket.tokens -= invoices

    def _rate(self, channel: str) -> tuple[float, float]:
        """(refill rate per s, burst) of a channel's share: 90% of the drain, at least one invoice a second."""
        rate = max(1.0, 0.9 * self.drain_per_s * self.share(channel))
        return rate, max(rate, 1.0)

    def _bucket(self, channel: str) -> Bucket:
        if channel not in self.buckets:
            self.buckets[channel] = Bucket(self._rate(channel)[1])
        return self.buckets[channel]
