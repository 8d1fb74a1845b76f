"""What the scripts are handed (pure: no Redis is called): the packed KEYS indices, the keys of one call sharing
one hash tag (so the same script runs on a Redis Cluster), and the day and month an invoice counts in."""

from __future__ import annotations

import datetime as dt
import re
import struct

import msgspec
import pytest
from redis.asyncio import Redis

from core import campaign as campaigns
from core import keys, lua
from core.contract import Queued
from dedup.claim import MAX_GENERATIONS, shard_keys
from ratelimit.caps import Caps

TAG = re.compile(r"\{([^}]*)\}")
CAMPAIGN = campaigns.load("tests/campaigns/hefei-2026-sharded.toml")


def test_indices_are_two_big_endian_bytes_each() -> None:
    packed = lua.indices([1, 4, 258, 65535])
    assert packed == b"\x00\x01\x00\x04\x01\x02\xff\xff"
    assert list(struct.unpack(">4H", packed)) == [1, 4, 258, 65535]
    assert lua.indices([]) == b""
    with pytest.raises(struct.error):
        lua.indices([65536])


@pytest.mark.parametrize("shard", [0, 3, 17])
def test_the_claim_script_keys_of_a_shard_share_its_hash_tag(shard: int) -> None:
    names = shard_keys(shard)
    assert len(names) == 5 + MAX_GENERATIONS
    assert {TAG.search(n).group(1) for n in names} == {f"s{shard:02d}"}  # type: ignore[union-attr]
    assert keys.recheck(shard).startswith(keys.tag(shard)) and keys.verified(shard, "k").startswith(keys.tag(shard))


def test_a_channels_rate_states_and_nonces_share_its_tag() -> None:
    names = [
        keys.channel_rates("c1"),
        keys.nonce("c1", "n" * 16),
        keys.user_rate("c1", "u"),
        keys.device_rate("c1", "d"),
    ]
    assert {TAG.search(n).group(1) for n in names} == {"rl:c1"}  # type: ignore[union-attr]
    assert len(set(names)) == len(names)


def queued(person: str, at: dt.datetime) -> Queued:
    ms = int(at.timestamp() * 1000)
    return Queued("k", "n", "", "2026-04-01", 10000, "s", "", "", "", person, "u", "d", "b", "c", ms)


def test_an_invoice_counts_in_the_campaigns_day_and_month_not_utcs() -> None:
    caps = Caps(Redis(), CAMPAIGN)  # no connection is made: only the keys are worked out
    late_utc = dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC)  # 00:30 on 1 April in Shanghai
    shard, key, day = caps.slot(queued("p" * 64, late_utc))
    assert day == "01" and key.endswith(":202604")
    assert key == keys.cap(shard, "p" * 64, "202604") and 0 <= shard < CAMPAIGN.dedup.shards
    assert caps.slot(queued("p" * 64, late_utc))[0] == shard  # a person always lands on one cap shard


def test_from_the_campaigns_compact_month_a_person_month_hash_has_the_short_name_and_sellers_digest() -> None:
    person = "0123456789abcdef" * 4  # a keyed hash's hex, as the gateway's persons are
    camp = msgspec.structs.replace(CAMPAIGN, caps=msgspec.structs.replace(CAMPAIGN.caps, compact_from="202605"))
    caps = Caps(Redis(), camp)
    april, may = (caps.place(queued(person, dt.datetime(2026, m, 10, tzinfo=dt.UTC))) for m in (4, 5))
    assert not april.compact and april.moving and april.seller("91340100MA2N000001") == "91340100MA2N000001"
    assert may.compact and not may.moving  # a hash of the long name is never moved into the compact form
    assert may.key == f"{{c{may.shard:02d}}}:cap:2605ASNFZ4mrze8BI0Vn" and len(may.key) == 30
    assert may.key == keys.cap(may.shard, person, "202605", compact=True)
    digest = may.seller("91340100MA2N000001")
    assert isinstance(digest, bytes) and len(digest) == 6 and digest != may.seller("91340100MA2N000002")
    # What the reservation hands caps.lua: the digest in place of the tax id.
    call = caps.reservations([queued(person, dt.datetime(2026, 5, 10, tzinfo=dt.UTC))])[(may.shard, may.day)]
    assert call.argv == [may.seller("s"), "k"] and call.names() == [may.key]


def test_a_campaign_names_its_compact_month_as_yyyymm() -> None:
    for bad in ("2027-01", "202713", "27001", "2027010"):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({**msgspec.to_builtins(CAMPAIGN.caps), "compact_from": bad}, campaigns.Caps)
