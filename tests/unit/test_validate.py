import decimal
import random

import msgspec
import orjson
import pytest

from core import campaign as campaigns
from core.campaign import Campaign
from core.contract import Queued
from core.hashing import keyed_hash, name_ref
from gateway.parse import decode
from gateway.validate import Rejection, check, invoice_key
from loadtest import sample

CAMPAIGN = campaigns.load("deploy/campaigns/hefei-2026.toml")
NOW_MS = 1772366400000


def run(
    raw: dict[str, object], channel: str = "demo-channel", msgpack: bool = False, campaign: Campaign = CAMPAIGN
) -> Queued | Rejection:
    """An invoice through the gateway's decoding (JSON or msgpack) and checks."""
    body = msgspec.msgpack.encode({"invoices": [raw]}) if msgpack else orjson.dumps({"invoices": [raw]})
    item = decode(body, msgpack, 500, campaign.uploads.unknown_fields == "ignore")[0]
    return item if isinstance(item, Rejection) else check(item, campaign, channel, "k", NOW_MS, msgpack)


def test_valid_digital_invoice_is_queued_with_its_number_as_key() -> None:
    raw = sample.invoice(random.Random(1), amount="128.50")
    queued = run(raw)
    assert isinstance(queued, Queued)
    assert queued.key == raw["number"]
    assert queued.amount_fen == 12850
    assert queued.accepted_at_ms == NOW_MS


def test_valid_legacy_invoice_is_keyed_by_code_and_number() -> None:
    raw = sample.legacy_invoice(random.Random(2))
    queued = run(raw)
    assert isinstance(queued, Queued)
    assert queued.key == raw["code"] + raw["number"] == invoice_key(raw["number"], raw["code"])


def test_ten_digit_legacy_code_is_read_for_its_province() -> None:
    assert isinstance(run(sample.legacy_invoice(random.Random(3), code="3401261111")), Queued)
    rejected = run(sample.legacy_invoice(random.Random(3), code="4201261111"))
    assert isinstance(rejected, Rejection) and rejected.reason == "invoice_outside_region"


@pytest.mark.parametrize(("reason", "raw"), sample.broken_invoices(random.Random(4)))
def test_each_offline_rule_has_its_reason_code(reason: str, raw: dict[str, object]) -> None:
    result = run(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason


@pytest.mark.parametrize(
    "amount",
    ["0", "0.00", "-1", "NaN", "Infinity", "1.001", "100000000", "1e3", "1E3", " 128.50", "+128", "1_000", ".5", True],
)
def test_bad_amounts_are_refused(amount: str) -> None:
    result = run(sample.invoice(random.Random(5), amount=amount))
    assert isinstance(result, Rejection) and result.reason == "invalid_amount"


@pytest.mark.parametrize("amount", ["100", "100.0", "100.00", "0128.50", "128.500", 150.5, 100])
def test_good_amounts_at_or_above_the_minimum_pass(amount: object) -> None:
    result = run(sample.invoice(random.Random(6), amount=amount))
    assert isinstance(result, Queued)
    assert result.amount_fen == int(decimal.Decimal(str(amount)) * 100)


def test_number_year_must_match_issue_date() -> None:
    result = run(sample.invoice(random.Random(7), issue_date="2026-03-01", number="2534" + "1" * 16))
    assert isinstance(result, Rejection) and result.reason == "invalid_number"


def test_campaign_window_is_inclusive() -> None:
    assert isinstance(run(sample.invoice(random.Random(8), issue_date="2026-01-01")), Queued)
    assert isinstance(run(sample.invoice(random.Random(8), issue_date="2026-12-31")), Queued)


def test_buyer_name_is_compared_only_when_real_name_is_given() -> None:
    raw = sample.invoice(random.Random(9), buyer_name="李四", user={"id": "u", "device_id": "d"})
    assert isinstance(run(raw), Queued)


def test_same_id_number_is_one_person_across_channels() -> None:
    rng = random.Random(10)
    user = {"id": "u1", "device_id": "d1", "id_number": "11010519491231002X"}
    a = run(sample.invoice(rng, user=user), channel="demo-channel")
    b = run(sample.invoice(rng, user={**user, "id": "other"}), channel="demo-channel-2")
    c = run(sample.invoice(rng, user={"id": "u1", "device_id": "d1"}), channel="demo-channel")
    assert isinstance(a, Queued) and isinstance(b, Queued) and isinstance(c, Queued)
    assert a.person == b.person != c.person


def test_queued_invoice_carries_no_personal_data() -> None:
    raw = sample.invoice(
        random.Random(11), user={"id": "u1", "device_id": "d1", "real_name": "张三", "id_number": "11010519491231002X"}
    )
    packed = msgspec.msgpack.encode(run(raw))
    for secret in ("张三".encode(), b"11010519491231002X"):
        assert secret not in packed


@pytest.mark.parametrize("lat", [float("nan"), float("inf"), 91.0])
def test_a_location_that_is_no_place_is_refused_and_a_real_one_travels_as_a_distance(lat: float) -> None:
    rng = random.Random(12)
    far = {"id": "u1", "device_id": "d1", "location": {"lat": lat, "lon": 117.0}}
    bad = run(sample.invoice(rng, user=far), msgpack=True)  # JSON has no NaN nor Infinity
    assert isinstance(bad, Rejection) and bad.reason == "invalid_location"
    beijing = run(sample.invoice(rng, user={"id": "u1", "device_id": "d1", "location": {"lat": 39.9, "lon": 116.4}}))
    assert isinstance(beijing, Queued) and 890 < beijing.distance_km < 910  # Hefei to Beijing, about 900 km
    assert b"39.9" not in msgspec.msgpack.encode(beijing)


@pytest.mark.parametrize(
    ("number", "fen"), [(b"1e3", 100000), (b"1.2345e2", 12345), (b"128.50", 12850), (b"1E-3", None), (b"-5", None)]
)
def test_a_json_number_may_take_any_form_json_allows_a_string_may_not(number: bytes, fen: int | None) -> None:
    raw = sample.invoice(random.Random(13), amount=0)
    body = orjson.dumps({"invoices": [raw]}).replace(b'"amount":0', b'"amount":' + number)
    item = decode(body, False, 500)[0]
    assert not isinstance(item, Rejection)
    checked = check(item, CAMPAIGN, "demo-channel", "k", NOW_MS)
    if fen is None:
        assert isinstance(checked, Rejection) and checked.reason == "invalid_amount"
    else:
        assert isinstance(checked, Queued) and checked.amount_fen == fen
    as_string = run(sample.invoice(random.Random(13), amount=number.decode()))
    assert isinstance(as_string, Rejection) == (fen is None or b"e" in number.lower()), number


@pytest.mark.parametrize("number", [b"1e400", b"1e-400", b"1" + b"0" * 5000, b"0." + b"0" * 5000 + b"1"])
def test_numbers_far_out_of_range_are_refused_without_being_written_out(number: bytes) -> None:
    raw = sample.invoice(random.Random(13), amount=0)
    body = orjson.dumps({"invoices": [raw]}).replace(b'"amount":0', b'"amount":' + number)
    item = decode(body, False, 500)[0]
    assert not isinstance(item, Rejection)
    checked = check(item, CAMPAIGN, "demo-channel", "k", NOW_MS)
    assert isinstance(checked, Rejection) and checked.reason == "invalid_amount"


@pytest.mark.parametrize(("amount", "fen"), [(128.5, 12850), (100, 10000), ("128.50", 12850)])
def test_msgpack_amounts_are_read_by_their_shortest_text(amount: object, fen: int) -> None:
    queued = run(sample.invoice(random.Random(14), amount=amount), msgpack=True)
    assert isinstance(queued, Queued) and queued.amount_fen == fen
    inexact = run(sample.invoice(random.Random(14), amount=0.1 + 128.2), msgpack=True)  # 128.29999999999998
    assert isinstance(inexact, Rejection) and inexact.reason == "invalid_amount"


def test_a_misspelt_member_is_refused_naming_it_unless_the_campaign_ignores_them() -> None:
    user = {"id": "u1", "device_id": "d1", "real_nme": "李四"}
    refused = run(sample.invoice(random.Random(15), user=user))
    assert isinstance(refused, Rejection) and refused.reason == "unknown_field"
    assert "user.real_nme" in refused.detail
    ignore = campaigns.Uploads(future_issue_dates=True, unknown_fields="ignore")
    lenient = msgspec.structs.replace(CAMPAIGN, uploads=ignore)
    assert isinstance(run(sample.invoice(random.Random(15), user=user), campaign=lenient), Queued)
    top = run(sample.invoice(random.Random(15), amont="1"))
    assert isinstance(top, Rejection) and top.reason == "unknown_field" and top.detail.startswith("amont")


def test_a_date_after_today_is_refused_unless_the_campaign_takes_them() -> None:
    strict = msgspec.structs.replace(CAMPAIGN, uploads=campaigns.Uploads(future_issue_dates=False))
    # NOW_MS is 2026-03-01 20:00 in Shanghai (12:00 UTC): that day passes, the next one does not.
    assert isinstance(run(sample.invoice(random.Random(16), issue_date="2026-03-01"), campaign=strict), Queued)
    later = run(sample.invoice(random.Random(16), issue_date="2026-03-02"), campaign=strict)
    assert isinstance(later, Rejection) and later.reason == "issue_date_in_future"
    assert isinstance(run(sample.invoice(random.Random(16), issue_date="2026-03-02")), Queued)  # the sandbox


def test_names_are_compared_trimmed_and_in_nfkc() -> None:
    wide = {"id": "u1", "device_id": "d1", "real_name": "ＷＡＮＧ　Ｌｅｉ"}  # full-width letters and space
    assert isinstance(run(sample.invoice(random.Random(17), buyer_name=" WANG Lei ", user=wide)), Queued)
    other = run(sample.invoice(random.Random(17), buyer_name="WANG Le", user=wide))
    assert isinstance(other, Rejection) and other.reason == "buyer_name_mismatch"


def test_a_name_already_normal_hashes_as_before_nfkc() -> None:
    assert name_ref("k", "张三") == keyed_hash("k", "name:张三") == name_ref("k", "  张三\u3000")


@pytest.mark.parametrize("field", ["seller_name", "category"])
def test_a_nul_in_a_stored_text_is_that_invoices_rejection(field: str) -> None:
    # PostgreSQL's text holds no NUL: accepted, it would have failed the sink's COPY of its whole batch.
    result = run(sample.invoice(random.Random(5), **{field: "合肥\x00餐饮"}))
    assert isinstance(result, Rejection) and result.reason == "invalid_text"
