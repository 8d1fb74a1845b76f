import msgspec
import orjson
import pytest

from gateway import codes
from gateway.errors import Problem
from gateway.model import Invoice
from gateway.parse import decode, media
from gateway.validate import Rejection

GOOD = {
    "number": "26341000000000000001",
    "issue_date": "2026-03-01",
    "amount": 128.5,
    "seller_tax_id": "91340104MA1W0556X9",
    "buyer_name": "张三",
    "user": {"id": "u", "device_id": "d"},
}


def test_json_and_msgpack_bodies_decode_alike() -> None:
    as_json = decode(orjson.dumps({"invoices": [GOOD]}), media("application/json; charset=utf-8"), 500)
    as_msgpack = decode(msgspec.msgpack.encode({"invoices": [GOOD]}), media("application/msgpack"), 500)
    assert isinstance(as_json[0], Invoice) and isinstance(as_msgpack[0], Invoice)
    # Equal but for the amount, kept as written in each encoding (gateway/rules.py reads it).
    assert msgspec.structs.replace(as_json[0], amount=as_msgpack[0].amount) == as_msgpack[0]


def test_one_misshapen_invoice_rejects_only_itself() -> None:
    items = decode(orjson.dumps({"invoices": [GOOD, {"number": 5}, GOOD]}), False, 500)
    assert isinstance(items[0], Invoice) and isinstance(items[2], Invoice)
    assert isinstance(items[1], Rejection) and items[1].reason == "invalid_shape"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"invoices": 3}', b'{"other": []}'])
def test_body_of_wrong_shape_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(Problem) as refused:
        decode(body, False, 500)
    assert refused.value.code.status == 400


@pytest.mark.parametrize("count", [0, 4])
def test_invoice_count_is_bounded(count: int) -> None:
    with pytest.raises(Problem, match="1 to 3"):
        decode(orjson.dumps({"invoices": [GOOD] * count}), False, 3)


def test_other_media_types_are_refused() -> None:
    with pytest.raises(Problem) as refused:
        media("application/xml")
    assert refused.value.code is codes.UNSUPPORTED_MEDIA_TYPE


def test_no_content_type_is_json_and_a_top_level_member_unknown_is_refused() -> None:
    assert media("") is False
    with pytest.raises(Problem) as refused:
        decode(orjson.dumps({"invoices": [GOOD], "invoice": []}), False, 500)
    assert refused.value.code is codes.UNKNOWN_FIELD
