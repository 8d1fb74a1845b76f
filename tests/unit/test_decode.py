import msgspec
import orjson
import pytest

from gateway import codes
from gateway.errors import Problem
from gateway.model import Invoice
from gateway.parse import decode
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
    as_json = decode(orjson.dumps({"invoices": [GOOD]}), "application/json; charset=utf-8", 500)
    as_msgpack = decode(msgspec.msgpack.encode({"invoices": [GOOD]}), "application/msgpack", 500)
    assert as_json == as_msgpack
    assert isinstance(as_json[0], Invoice)


def test_one_misshapen_invoice_rejects_only_itself() -> None:
    items = decode(orjson.dumps({"invoices": [GOOD, {"number": 5}, GOOD]}), "application/json", 500)
    assert isinstance(items[0], Invoice) and isinstance(items[2], Invoice)
    assert isinstance(items[1], Rejection) and items[1].reason == "invalid_shape"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"invoices": 3}', b'{"other": []}'])
def test_body_of_wrong_shape_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(Problem) as refused:
        decode(body, "application/json", 500)
    assert refused.value.code.status == 400


@pytest.mark.parametrize("count", [0, 4])
def test_invoice_count_is_bounded(count: int) -> None:
    with pytest.raises(Problem, match="1 to 3"):
        decode(orjson.dumps({"invoices": [GOOD] * count}), "application/json", 3)


def test_other_media_types_are_refused() -> None:
    with pytest.raises(Problem) as refused:
        decode(b"<xml/>", "application/xml", 500)
    assert refused.value.code is codes.UNSUPPORTED_MEDIA_TYPE
