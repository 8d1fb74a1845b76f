"""The stream's invoice contract: what the gateway puts in an intake stream entry and the workers take out.

One entry per request and intake shard, written by ``dedup/claim_enqueue.lua`` in the same atomic step as the
claims. Its fields:

- ``~request``, ``~channel``, ``~at``: the request id, the uploading channel, the acceptance time (Unix ms);
- ``<invoice key>``: a new invoice, ``Queued`` packed with msgpack;
- ``~<invoice key>`` (empty value): a duplicate upload by this channel of a key another channel got in first,
  so that the workers record it (the channel may then read "duplicate");
- the request's tally, which the workers add to the daily reports (core/rollup.py) exactly once, by request id
  and part: ``~mode`` (``check`` or ``force``: which claim call wrote the entry), ``~outcomes`` (one character
  per invoice the call claimed, ``OUTCOMES``), ``~industries`` (msgpack list of those invoices' industries, in
  the same order) and, on the entry of the request's first shard only, ``~tally``: msgpack rows
  ``[metric, reason, industry, count, amount_fen]`` of what was decided before the claim (received, rejected,
  rate-limited, capped, sent twice in the request). A request with nothing to claim writes an entry holding its
  ``~tally`` alone.

No personal data travels: the person, the user, the device and the buyer's name are keyed hashes.

Also here: what a re-check item holds (``recheck_item``), since the gateway's reconciliation reads them too.
"""

from __future__ import annotations

import msgspec

REQUEST = b"~request"
CHANNEL = b"~channel"
AT = b"~at"
DUPLICATE = b"~"  # prefix of a duplicate's field (the key follows)
MODE = b"~mode"
TALLY = b"~tally"
OUTCOMES = b"~outcomes"
INDUSTRIES = b"~industries"
PRE = "pre"  # the tally part decided before the claim
# An entry may be written this long after its request began (its ``~at``, the day its tally counts on): who looks
# for a day's entries in the streams (closing a day, reconciling one) reads this far past the day's end.
LATE_ENTRY_MS = 60_000

# What each outcome character of a claim call adds to the tally. "m": the filter had seen the key and it was not
# in flight; a duplicate, unless the "force" call that follows claims it after all ("A"), which moves it back.
# "r": the channel's own upload answered 503 for want of replicas, taken back by its retry: the first upload
# counted the key as accepted, so the retry counts it as a key received again ("R": the same in force mode).
OUTCOMES_ADD: dict[str, tuple[tuple[str, int], ...]] = {
    "a": (("accepted", 1),),
    "d": (("duplicate", 1),),
    "m": (("duplicate", 1),),
    "r": (("duplicate", 1),),
    "A": (("accepted", 1), ("duplicate", -1)),
    "D": (),
    "R": (),
}

TallyRow = tuple[str, str, str, int, int]  # metric, reason, industry, count, amount_fen


class Queued(msgspec.Struct, frozen=True, array_like=True):
    """An accepted invoice as it travels through the stream to the workers."""

    key: str
    number: str
    code: str
    issue_date: str
    amount_fen: int
    seller_tax_id: str
    seller_name: str
    category: str
    check_code: str
    person: str
    user_ref: str
    device_ref: str
    buyer_ref: str
    channel: str
    accepted_at_ms: int
    distance_km: float = -1.0  # of the upload from the campaign's centre, when the channel gave a location


class Duplicate(msgspec.Struct, frozen=True):
    """A channel's upload of a key another channel got in first."""

    key: str
    channel: str
    at_ms: int


class TallyPart(msgspec.Struct, frozen=True):
    """One part of a request's tally: ``part`` is ``"pre"`` or ``"<mode>:<shard>"``, so a copy of an entry (a
    redelivery, or a retried script call) names the same part and is counted once."""

    request: str
    part: str
    channel: str
    at_ms: int
    rows: list[TallyRow]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Queued).decode
_decode_rows = msgspec.msgpack.Decoder(list[tuple[str, str, str, int, int]]).decode
_decode_names = msgspec.msgpack.Decoder(list[str]).decode
_decode_recheck = msgspec.msgpack.Decoder(tuple[int, bytes]).decode


def pack(q: Queued) -> bytes:
    return _encode(q)


def unpack(packed: bytes) -> Queued:
    return _decode(packed)


def read_entry(fields: dict[bytes, bytes]) -> tuple[list[tuple[bytes, Queued]], list[Duplicate]]:
    """An entry's new invoices (each with its packed form) and its duplicates. Raises KeyError, ValueError or
    msgspec.DecodeError on an entry that breaks the contract (the workers set it aside as a dead letter)."""
    channel = fields[CHANNEL].decode()
    at_ms = int(fields[AT])
    queued, dups = [], []
    for name, value in fields.items():
        if name.startswith(DUPLICATE):
            if name[1:2].isdigit():
                dups.append(Duplicate(name[1:].decode(), channel, at_ms))
        else:
            queued.append((value, unpack(value)))
    return queued, dups


def pack_rows(rows: list[TallyRow]) -> bytes:
    return _encode(rows)


def pack_names(names: list[str]) -> bytes:
    return _encode(names)


def read_tallies(fields: dict[bytes, bytes], shard: int) -> list[TallyPart]:
    """The tally parts an entry carries (none for an entry of a gateway older than tallies). Raises like
    ``read_entry`` on an entry that breaks the contract."""
    if TALLY not in fields and OUTCOMES not in fields:
        return []
    request, channel, at_ms = fields[REQUEST].decode(), fields[CHANNEL].decode(), int(fields[AT])
    parts = []
    if TALLY in fields:
        parts.append(TallyPart(request, PRE, channel, at_ms, _decode_rows(fields[TALLY])))
    if OUTCOMES in fields:
        outcomes = fields[OUTCOMES].decode()
        industries = _decode_names(fields[INDUSTRIES])
        if len(industries) != len(outcomes):
            raise ValueError("~outcomes and ~industries differ in length")
        counted: dict[tuple[str, str], int] = {}
        for outcome, industry in zip(outcomes, industries, strict=True):
            for metric, n in OUTCOMES_ADD[outcome]:
                counted[metric, industry] = counted.get((metric, industry), 0) + n
        rows = [(metric, "", industry, n, 0) for (metric, industry), n in counted.items() if n]
        parts.append(TallyPart(request, f"{fields[MODE].decode()}:{shard}", channel, at_ms, rows))
    return parts


def recheck_item(tries: int, packed: bytes) -> bytes:
    """A re-check item: ``msgpack([tries, packed invoice])`` (workers/recheck.py)."""
    return _encode((tries, packed))


def parse_recheck(member: bytes) -> tuple[int, bytes]:
    tries, packed = _decode_recheck(member)
    return tries, packed
