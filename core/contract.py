"""The stream's invoice contract: what the gateway puts in an intake stream entry and the workers take out.

One entry per request and intake shard, written by ``dedup/claim_enqueue.lua`` in the same atomic step as the
claims. Its fields:

- ``~request``, ``~channel``, ``~at``: the request id, the uploading channel, the acceptance time (Unix ms);
- ``<invoice key>``: a new invoice, ``Queued`` packed with msgpack;
- ``~<invoice key>`` (empty value): a duplicate upload by this channel of a key another channel got in first,
  so that the workers record it (the channel may then read "duplicate").

No personal data travels: the person, the user, the device and the buyer's name are keyed hashes.
"""

from __future__ import annotations

import msgspec

REQUEST = b"~request"
CHANNEL = b"~channel"
AT = b"~at"
DUPLICATE = b"~"  # prefix of a duplicate's field (the key follows)


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


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Queued).decode


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
