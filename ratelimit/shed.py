"""Load shedding: a fast 503 before the body is read, rather than a queue in the event loop.

Three refusals, all decided from this process's own state (no I/O on the request's path):

- ``in_flight``: the process already handles as many requests as its concurrency limit allows. The limit adapts
  to latency (``ConcurrencyLimit``), between ``min_in_flight`` and ``max_in_flight``;
- ``fair_share``: the process is busy (past ``busy_share`` of its limit) and this channel holds its weighted
  share of the requests in flight while it also had at least its weighted share of the admissions lately, so
  that one channel's burst cannot crowd out the others. A channel admitted less than its share (``light``) is
  not the one crowding: its arrivals come in clumps, and holding it to its share of the slots at every
  instant refused its clumps while the flood kept the rest;
- ``pipeline_saturated``: the pipeline behind the gateway is saturated (``PipelineMonitor``) and this channel
  has spent its share of what the workers drain: 90% of the drain times its weighted share; shares refill at
  that rate.

A request refused for want of a slot (``in_flight``) may wait up to ``max_wait_s`` for one when its channel
holds less than its weighted share: freed slots go to the waiting channel with the fewest requests in flight
for its weight (fair queueing of slots). A flood is always over its share, so it never waits; a channel that
sends its normal rate is not refused just because the flood keeps every slot busy. The wait is short and
bounded (at most a share of the limit per channel), so it is not the unbounded queue in the event loop that
shedding exists to avoid.

Only ``/v1`` requests are shed (gateway/middleware.py): the operations endpoints never are, and ``/readyz``
does not follow shedding (a process that sheds is still ready). A feed long poll holds a slot, but its time says
nothing of load, so it does not adapt the limit.

The channel is read from ``X-Client-Id`` before authentication, so only refusals use it: a caller who forges
another channel's id is refused at the signature and spends none of that channel's share.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque

import msgspec

from core.campaign import Shedding
from core.settings import Shed
from ratelimit import metrics

ACTIVE_S = 1.0


class SheddingConfig(msgspec.Struct, frozen=True, kw_only=True):
    max_in_flight: int = 256
    min_in_flight: int = 2
    target_latency_s: float = 0.0  # 0: the limit stays at max_in_flight
    window_s: float = 0.25
    max_wait_s: float = 0.0  # how long a request of a channel under its share may wait for a slot (0: never)
    busy_share: float = 0.5
    weights: dict[str, float] = {}
    default_weight: float = 1.0

    @classmethod
    def of(cls, shed: Shed, shedding: Shedding) -> SheddingConfig:
        """The settings' shedding group with the campaign's channel weights."""
        return cls(
            max_in_flight=shed.max_in_flight,
            min_in_flight=shed.min_in_flight,
            target_latency_s=shed.target_latency_ms / 1000,
            max_wait_s=shed.fair_wait_ms / 1000,
            busy_share=shed.busy_share,
            weights=shedding.weights,
            default_weight=shedding.default_weight,
        )


class ConcurrencyLimit:
    """Requests in flight this process may hold, adapted to the latency it sees (AIMD, in the spirit of Netflix's
    concurrency-limits and of TCP's congestion window).

    Every ``window_s``: if the slowest request that finished in the window took longer than the target, the
    limit is cut by ``BACKOFF`` (down to ``floor``); otherwise, if the window used the limit (requests in flight
    reached it, less one), it grows by one (up to ``ceiling``). A limit nobody uses does not grow, so it stays
    close to what the process can serve at the target latency; requests past it get the fast 503 rather than
    a place in the event loop's queue, where they would slow every admitted request down.
    """

    BACKOFF = 0.9

    def __init__(self, config: SheddingConfig) -> None:
        self.ceiling = float(config.max_in_flight)
        self.floor = float(min(config.min_in_flight, config.max_in_flight))
        self.target_s = config.target_latency_s
        self.window_s = config.window_s
        self.limit = self.ceiling
        self._started = time.monotonic()
        self._worst_s = 0.0
        self._peak = 0

    def allowed(self) -> int:
        return max(1, int(self.limit))

    def entered(self, in_flight: int) -> None:
        self._peak = max(self._peak, in_flight)

    def observe(self, latency_s: float, now: float) -> None:
        """A request finished after ``latency_s``; closes the window when it is over."""
        if self.target_s <= 0:
            return
        self._worst_s = max(self._worst_s, latency_s)
        if now - self._started < self.window_s:
            return
        if self._worst_s > self.target_s:
            self.limit = max(self.floor, self.limit * self.BACKOFF)
        elif self._peak + 1 >= self.allowed():
            self.limit = min(self.ceiling, self.limit + 1)
        self._started, self._worst_s, self._peak = now, 0.0, 0
        metrics.CONCURRENCY_LIMIT.set(self.allowed())


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
        self.concurrency = ConcurrencyLimit(config)
        metrics.CONCURRENCY_LIMIT.set(self.concurrency.allowed())
        self.known: set[str] = set(config.weights)  # channels that may name a metric label (bounded)
        self.in_flight = 0
        self.by_channel: Counter[str] = Counter()
        self.saturated = False
        self.drain_per_s = 0.0  # invoices/s the workers drain, this process's part of it
        self.buckets: dict[str, Bucket] = {}
        self.last_seen: dict[str, float] = {}
        self.waiting: dict[str, deque[asyncio.Future[bool]]] = {}
        self.admitted: dict[str, tuple[float, float]] = {}  # channel -> (decaying count of admissions, as of)

    def weight(self, channel: str) -> float:
        return self.config.weights.get(channel, self.config.default_weight)

    def share(self, channel: str) -> float:
        """This channel's weighted share among the channels active lately: with a request in flight or seen in
        the last ``ACTIVE_S`` (a channel between two requests still counts, or a flood would take its room)."""
        recent = time.monotonic() - ACTIVE_S
        for gone in [c for c, at in self.last_seen.items() if at < recent]:  # bounded: forgotten once quiet
            del self.last_seen[gone]
        active = set(self.last_seen) | set(self.by_channel) | {channel}
        return self.weight(channel) / sum(self.weight(c) for c in active)

    def refusal(self, channel: str) -> str | None:
        """Why a request of ``channel`` must be shed now, or None to let it in."""
        c = self.config
        if channel in self.known:
            self.last_seen[channel] = time.monotonic()
        # Below the busy mark of the adapted limit neither slots nor shares can refuse (a light channel's cap is
        # only higher): the channel's standing is worked out only when the process is busy.
        if self.in_flight >= self.concurrency.allowed() * min(1.0, c.busy_share):
            cap, share, light = self._standing(channel)
            if self.in_flight >= cap:
                return "in_flight"
            busy = self.in_flight >= cap * c.busy_share
            if busy and not light and self.by_channel[channel] >= max(1.0, cap * share):
                return "fair_share"
        if self.saturated and self._bucket(channel).refill(*self._rate(channel)) <= 0:
            return "pipeline_saturated"
        return None

    def light(self, channel: str, share: float | None = None) -> bool:
        """Whether this channel got less than its weighted share (``share``, worked out if not given) of the
        requests admitted lately (decaying over ``ACTIVE_S``): it is not the one loading the process."""
        now = time.monotonic()
        counts = {c: self._admitted(c, now) for c in self.admitted}
        for gone in [c for c, n in counts.items() if n < 0.01]:  # bounded: forgotten once quiet
            del self.admitted[gone]
        if share is None:
            share = self.share(channel)
        return counts.get(channel, 0.0) < share * sum(counts.values())

    def _standing(self, channel: str) -> tuple[int, float, bool]:
        """The requests in flight this channel's request is measured against, its weighted share and whether it
        is light, each worked out once. The cap is the adaptive limit, or for a light channel the ceiling
        (``max_in_flight``): the adaptive limit holds back the channels that load the process; a channel
        sending its normal rate beside a flood is not starved because the flood's latency cut the limit (slots
        are fair, but a light channel's requests last as long as the flood makes them)."""
        share = self.share(channel)
        light = self.light(channel, share)
        return (self.config.max_in_flight if light else self.concurrency.allowed()), share, light

    def _admitted(self, channel: str, now: float) -> float:
        count, at = self.admitted.get(channel, (0.0, now))
        return count * math.exp((at - now) / ACTIVE_S)

    def enter(self, channel: str) -> None:
        now = time.monotonic()
        self.last_seen[channel] = now
        self.admitted[channel] = (self._admitted(channel, now) + 1, now)
        self.in_flight += 1
        self.by_channel[channel] += 1
        self.concurrency.entered(self.in_flight)
        metrics.IN_FLIGHT.inc()

    def leave(self, channel: str, latency_s: float | None = None) -> None:
        """A request is done; ``latency_s`` (None for a long poll, whose time says nothing of load) adapts the
        concurrency limit."""
        if latency_s is not None:
            self.concurrency.observe(latency_s, time.monotonic())
        self.in_flight -= 1
        self.by_channel[channel] -= 1
        if self.by_channel[channel] <= 0:
            del self.by_channel[channel]
        metrics.IN_FLIGHT.dec()
        if self.waiting:
            self._hand_over()

    def may_wait(self, channel: str) -> bool:
        """Whether a request refused for want of a slot may wait for one: its channel holds (in flight and
        waiting) less than its weighted share of the limit (less than the limit if it had less than its share of
        the admissions lately), and has room in the pipeline's share if saturated."""
        if self.config.max_wait_s <= 0:
            return False
        held = self.by_channel[channel] + len(self.waiting.get(channel, ()))
        cap, share, light = self._standing(channel)
        if held >= (cap if light else max(1.0, cap * share)):
            return False
        return not self.saturated or self._bucket(channel).refill(*self._rate(channel)) > 0

    async def wait(self, channel: str) -> bool:
        """Wait up to ``max_wait_s`` for a slot: True once this request holds one (``leave`` entered it)."""
        slot: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        queue = self.waiting.setdefault(channel, deque())
        queue.append(slot)
        try:
            return await asyncio.wait_for(slot, self.config.max_wait_s)
        except TimeoutError:
            return False
        except BaseException:
            if slot.done() and not slot.cancelled():
                self.leave(channel)  # handed a slot, then cancelled (the caller went away): give it back
            raise
        finally:
            if slot in queue:
                queue.remove(slot)
            if not queue and self.waiting.get(channel) is queue:
                del self.waiting[channel]

    def _hand_over(self) -> None:
        """Free slots to waiting requests, the channel with the fewest in flight for its weight first."""
        while True:
            ready = [c for c, q in self.waiting.items() if q and self.in_flight < self._standing(c)[0]]
            if not ready:
                return
            channel = min(ready, key=lambda c: self.by_channel[c] / self.weight(c))
            slot = self.waiting[channel].popleft()
            if not slot.done():
                self.enter(channel)
                slot.set_result(True)

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
