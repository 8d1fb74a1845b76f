import decimal
import random

import msgspec
import pytest

from core import campaign as campaigns
from core.contract import Queued
from gateway.model import Invoice
from gateway.validate import Rejection, check, invoice_key
from loadtest import sample

CAMPAIGN = campaigns.load("deploy/campaigns/hefei-2026.toml")
NOW_MS = 1772366400000


def run(raw: dict[str, object], channel: str = "demo-channel") -> Queued | Rejection:
    return check(msgspec.convert(raw, Invoice, strict=False), CAMPAIGN, channel, "k", NOW_MS)


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


@pytest.mark.parametrize(("reason", "raw"), sample.broken_invoices(random.Random(4))[:-1])
def test_each_offline_rule_has_its_reason_code(reason: str, raw: dict[str, object]) -> None:
    result = run(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason


@pytest.mark.parametrize("amount", ["0", "0.00", "-1", "NaN", "Infinity", "1.001", "100000000"])
def test_bad_amounts_are_refused(amount: str) -> None:
    result = run(sample.invoice(random.Random(5), amount=amount))
    assert isinstance(result, Rejection) and result.reason == "invalid_amount"


@pytest.mark.parametrize("amount", ["100", "100.0", "100.00", 150.5, 100])
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
    bad = run(sample.invoice(rng, user={"id": "u1", "device_id": "d1", "location": {"lat": lat, "lon": 117.0}}))
    assert isinstance(bad, Rejection) and bad.reason == "invalid_location"
    beijing = run(sample.invoice(rng, user={"id": "u1", "device_id": "d1", "location": {"lat": 39.9, "lon": 116.4}}))
    assert isinstance(beijing, Queued) and 890 < beijing.distance_km < 910  # Hefei to Beijing, about 900 km
    assert b"39.9" not in msgspec.msgpack.encode(beijing)
