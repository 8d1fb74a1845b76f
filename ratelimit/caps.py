"""Campaign caps across all channels (business rules): per person per day, per month, per seller per month.

Reserved before deduplication (SPEC.md's stage order), in one pipelined round trip: one script call per
cap shard the request touches (persons are spread over shards by hash, so the keys of one call share a
Redis Cluster slot). A slot is held per (person, invoice): the same invoice never takes two. Slots of
invoices that do not count are given back: a duplicate of another person's upload (at once, by the
gateway) and, when the campaign says so, an invoice the workers find ineligible.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar
from zoneinfo import ZoneInfo

from core import keys, lua
from core.campaign import Campaign
from core.contract import Queued
from core.shards import digest, shard_of
from core.stores import RedisClient
from core.times import local_minute

TTL_S = 35 * 24 * 3600
# In the compact form (months from the campaign's caps.compact_from), a seller is known in a person-month hash
# by this many bytes of its tax id's BLAKE2b, not by the 18-character id: its count's field and the invoice's
# reservation, which names it again to give the slot back, are 24 bytes shorter together. A person's sellers in
# a month are at most the monthly cap's (20 in the sandbox: 190 pairs in 2^48, so two share a field with odds of
# about 1 in 10^12); two that did would share the seller cap: a consumer refused early, never counted past it.
SELLER_DIGEST_BYTES = 6


@functools.lru_cache(maxsize=1 << 14)  # sellers come back (0.2 µs a digest found here, 0.6 worked out)
def _seller_digest(tax_id: str) -> bytes:
    return hashlib.blake2b(tax_id.encode(), digest_size=SELLER_DIGEST_BYTES).digest()


G = TypeVar("G")
REFUSALS = ("person_daily_cap", "person_monthly_cap", "seller_person_monthly_cap")


class _Call:
    """The KEYS and ARGV of one script call (one cap shard), and which invoices it answers for."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.places: list[_Place] = []  # each key's place, in the same order (for its long name)
        self.moving = False  # whether a month of these keys may still have hashes of the long name
        self.argv: list[str | int | bytes] = []
        self.indices: list[int] = []  # reserve: each invoice's index into KEYS, sent as 2 bytes apiece
        self.invoices: list[int] = []

    def index(self, place: _Place) -> int:
        found = self.keys.get(place.key)
        if found is None:
            found = self.keys[place.key] = len(self.keys) + 1
            self.places.append(place)
        self.moving = self.moving or place.moving
        return found

    def names(self) -> list[str]:
        """The call's KEYS: the hashes' names, then, while one of their months may have hashes of the long
        name, each one's long name (the scripts move such a hash to its short name)."""
        return [*self.keys, *(p.long for p in self.places)] if self.moving else list(self.keys)

    def moving_flag(self) -> str:
        return "1" if self.moving else "0"


class _Place(NamedTuple):
    shard: int
    key: str  # the person-month hash
    day: str  # "dd"
    person: str
    month: str  # "yyyymm"
    compact: bool  # the month's hashes take the compact form (``Caps``)

    @property
    def moving(self) -> bool:
        """Whether the month may have a hash of the long name (never one of the compact form's months: a hash
        of the long name has the fields of the form before)."""
        return not self.compact and self.month <= keys.CAP_LONG_UNTIL

    def seller(self, tax_id: str) -> str | bytes:
        """How the month's hashes know a seller: its tax id, or in the compact form its digest."""
        if self.compact:
            return _seller_digest(tax_id)
        return tax_id

    @property
    def long(self) -> str:
        """The hash's name before issue 19, worked out only for a call that needs it."""
        return keys.cap_long(self.shard, self.person, self.month)


class Caps:
    def __init__(self, redis: RedisClient, campaign: Campaign) -> None:
        self._redis = redis
        self._caps = campaign.caps
        self._tz = ZoneInfo(campaign.caps.timezone)
        self._shards = campaign.dedup.shards
        # From this month (yyyymm), the person-month hashes take the compact form: a shorter name
        # (core/keys.py cap) and sellers known by a digest (SELLER_DIGEST_BYTES). A month's hashes all keep one
        # form, so the scripts read both without knowing which.
        self._compact_from = campaign.caps.compact_from
        self._reserve = redis.register_script(lua.load("ratelimit", "caps.lua"))
        self._release = redis.register_script(lua.load("ratelimit", "caps_release.lua"))

    async def reserve(self, invoices: Sequence[Queued]) -> list[str]:
        """Per invoice: "new", "held" (it already holds a slot) or the refusing cap's reason code."""
        calls = self.reservations(invoices)
        replies = await self._send(self._reserve, calls, self.reserve_argv)
        answers = [""] * len(invoices)
        for call, reply in zip(calls.values(), replies, strict=True):
            for i, value in zip(call.invoices, reply, strict=True):
                answers[i] = value.decode()
        return answers

    def reservations(self, invoices: Sequence[Queued]) -> dict[tuple[int, str], _Call]:
        """The reservation's script calls: one per cap shard and day (one day in a request, in practice)."""
        calls: dict[tuple[int, str], _Call] = {}
        for i, q in enumerate(invoices):
            place = self.place(q)
            call = calls.get((place.shard, place.day)) or calls.setdefault((place.shard, place.day), _Call())
            call.indices.append(call.index(place))
            call.argv += [place.seller(q.seller_tax_id), q.key]
            call.invoices.append(i)
        return calls

    def reserve_argv(self, group: tuple[int, str], call: _Call) -> list[Any]:
        """ARGV of caps.lua for one call of ``reservations``."""
        c = self._caps
        return [
            c.person_daily,
            c.person_monthly,
            c.seller_person_monthly,
            TTL_S,
            group[1],
            lua.indices(call.indices),
            call.moving_flag(),
            *call.argv,
        ]

    async def release(self, invoices: Sequence[Counted]) -> int:
        """Give back the slots these invoices hold (none twice); returns how many were given back."""
        calls: dict[int, _Call] = {}
        for q in invoices:
            place = self.place(q)
            call = calls.setdefault(place.shard, _Call())
            call.argv += [call.index(place), q.key]
        return sum(await self._send(self._release, calls, lambda _, call: [call.moving_flag(), *call.argv]))

    async def _send(self, script: Any, calls: Mapping[G, _Call], argv: Callable[[G, _Call], list[Any]]) -> list[Any]:
        """One script call per group of invoices (a cap shard; for a reservation, a shard and a day), its ARGV
        made by ``argv``; the replies in the groups' order."""
        if not calls:
            return []
        return await lua.call_each(self._redis, script, [(c.names(), argv(g, c)) for g, c in calls.items()])

    def slot(self, q: Counted) -> tuple[int, str, str]:
        """The cap shard, the person-month hash and the day ("dd") an invoice counts in: its upload time, in the
        campaign's time zone."""
        place = self.place(q)
        return place.shard, place.key, place.day

    def place(self, q: Counted) -> _Place:
        shard = 0 if self._shards == 1 else shard_of(digest(q.person), self._shards)
        month, day = _month_day(local_minute(q.accepted_at_ms, self._tz))
        compact = month >= self._compact_from
        return _Place(shard, keys.cap(shard, q.person, month, compact), day, q.person, month, compact)


class Counted(Protocol):
    """What places an invoice in the caps: a queued invoice, or a committed one being given its slot back."""

    @property
    def key(self) -> str: ...
    @property
    def person(self) -> str: ...
    @property
    def accepted_at_ms(self) -> int: ...


def _month_day(local: dt.datetime) -> tuple[str, str]:
    """``yyyymm`` and ``dd`` of a local time (``core.times.local_minute``, worked out once a minute)."""
    return f"{local.year}{local.month:02d}", f"{local.day:02d}"
