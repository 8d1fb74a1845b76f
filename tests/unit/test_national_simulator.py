"""workers/national_simulator.py: what the platform holds is told as if it kept every record as it came (the
digest of their texts in arrival order, the counts by type, the newest N), though it keeps texts only."""

import hashlib

import msgspec
import pytest

from workers.national_simulator import Control, Held, Platform


def record(n: int, kind: str) -> dict[str, object]:
    made: dict[str, object] = {"id": f"r{n}", "type": kind, "at": "2026-12-01T08:00:00.000+08:00"}
    if kind == "batch.fed":
        return {**made, "batch": {"seq": n, "sha256": f"{n:064x}"}}
    return {**made, "date": "2026-12-01", "report": {"n": n, "城市": ["合肥", n]}}


def test_the_digest_counts_and_newest_records_are_those_of_every_record_held() -> None:
    platform = Platform("c", "s", Control())
    made = [record(n, ("report.daily", "batch.fed")[n % 3 == 0]) for n in range(10)]
    results = platform.take([*made, made[4]])  # the fifth again: a duplicate, not held twice
    assert [r["status"] for r in results] == ["accepted"] * 10 + ["duplicate"]
    texts = b"\n".join(msgspec.json.encode(r) for r in made)
    assert platform.digest.hexdigest() == hashlib.sha256(texts).hexdigest()
    assert dict(platform.by_type) == {"batch.fed": 4, "report.daily": 6}
    assert platform.last(3) == made[-3:]
    assert platform.last(50) == made and platform.last(0) == []

    platform.change(Control(clear=True))
    assert platform.digest.hexdigest() == hashlib.sha256(b"").hexdigest()
    assert not platform.held and not platform.by_type and platform.last(5) == []
    platform.take([made[4]])  # forgotten: accepted again
    assert platform.digest.hexdigest() == hashlib.sha256(msgspec.json.encode(made[4])).hexdigest()


def test_records_past_a_block_are_held_compressed_and_told_as_they_came(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Held, "BLOCK", 4)
    platform = Platform("c", "s", Control())
    made = [record(n, "report.daily") for n in range(11)]  # two full blocks and three open texts
    assert [r["status"] for r in platform.take(made)] == ["accepted"] * 11
    assert len(platform.held.blocks) == 2 and len(platform.held.open) == 3
    assert [r["status"] for r in platform.take([made[1], made[9]])] == ["duplicate"] * 2  # in a block, and open
    assert platform.last(6) == made[-6:] and platform.last(11) == made and platform.last(99) == made
    texts = b"\n".join(msgspec.json.encode(r) for r in made)
    assert platform.digest.hexdigest() == hashlib.sha256(texts).hexdigest() and len(platform.held) == 11
