import hashlib
import json

from workers.chain import GENESIS, batch_sha256, entry_text


def test_entry_text_is_sorted_compact_json_with_non_ascii_kept() -> None:
    entry = {"key": "1", "kind": "add", "amount_fen": 12850, "category": "餐饮", "person": "p"}
    expected = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entry_text(entry) == expected
    assert "餐饮" in entry_text(entry)


def test_batch_hash_chains_prev_and_entries_with_newlines() -> None:
    entries = ['{"a":1}', '{"b":2}']
    expected = hashlib.sha256(f'{GENESIS}\n{{"a":1}}\n{{"b":2}}'.encode()).hexdigest()
    assert batch_sha256(GENESIS, entries) == expected
    assert batch_sha256(expected, entries) != expected
    assert len(GENESIS) == 64 and set(GENESIS) == {"0"}
