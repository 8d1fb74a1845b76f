import hashlib
import json

from core.feed import GENESIS, batch_sha256, text


def test_entry_text_is_sorted_compact_json_with_non_ascii_kept() -> None:
    entry = {"key": "1", "kind": "add", "amount_fen": 12850, "category": "餐饮", "person": "p"}
    expected = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text(entry) == expected
    assert "餐饮" in text(entry)


def test_batch_hash_chains_prev_and_entries_with_newlines() -> None:
    entries = ['{"a":1}', '{"b":2}']
    expected = hashlib.sha256(f'{GENESIS}\n{{"a":1}}\n{{"b":2}}'.encode()).hexdigest()
    assert batch_sha256(GENESIS, entries) == expected
    assert batch_sha256(expected, entries) != expected
    assert len(GENESIS) == 64 and set(GENESIS) == {"0"}


def test_one_timestamp_format_for_feed_and_api_from_either_input() -> None:
    import datetime as dt

    from core.times import iso_from_ms, iso_ms

    ms = 1772366401250
    assert iso_from_ms(ms) == "2026-03-01T12:00:01.250Z"
    assert iso_ms(dt.datetime.fromtimestamp(ms // 1000, dt.UTC).replace(microsecond=250_999)) == iso_from_ms(ms)
    assert iso_from_ms(1772366401999) == "2026-03-01T12:00:01.999Z"  # no float rounding into the next second
