"""Made-up invoices for the Hefei 2026 sandbox: valid ones with valid tax ids, and every kind of broken one.

Used by the try-it script, the tests, the locust scenarios and the benchmarks.
"""

from __future__ import annotations

import random
from typing import Any

from core.checks import id_check_char, uscc_check_char

ORG_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def seller_tax_id(rng: random.Random, division: str = "340104") -> str:
    """A valid USCC of an enterprise (91) registered in ``division``."""
    first17 = "91" + division + "".join(rng.choice(ORG_CHARS) for _ in range(9))
    return first17 + uscc_check_char(first17)


def id_number(rng: random.Random, area: str = "340104") -> str:
    """A valid 18-digit resident ID number of someone born in the 1980s."""
    birth = f"198{rng.randrange(10)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    first17 = area + birth + f"{rng.randrange(1000):03d}"
    return first17 + id_check_char(first17)


def digital_number(rng: random.Random, ending: str | None = None) -> str:
    """A 20-digit number of a 2026 Hefei digital invoice; ``ending`` picks a sandbox answer ("999", ...; "994":
    the national platform's simulator refuses its records)."""
    body = "26341" + "".join(rng.choice("0123456789") for _ in range(15))
    if ending is None:
        while body[-3:] in ("994", "995", "996", "997", "998", "999"):
            body = body[:-3] + f"{rng.randrange(994):03d}"
        return body
    return body[:-3] + ending


def invoice(
    rng: random.Random, *, ending: str | None = None, person: int | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid digital invoice; ``person`` fixes the uploading consumer (else a new one each time)."""
    who = rng.randrange(10**9) if person is None else person
    user = {"id": f"u{who}", "device_id": f"d{who}", "real_name": "张三"}
    inv: dict[str, Any] = {
        "number": digital_number(rng, ending),
        "issue_date": f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "amount": f"{rng.randrange(10000, 200000) / 100:.2f}",
        "seller_tax_id": seller_tax_id(rng),
        "seller_name": "合肥示例餐饮有限公司",
        "buyer_name": "张三",
        "category": "catering",
        "user": user,
    }
    inv.update(overrides)
    return inv


def legacy_invoice(rng: random.Random, **overrides: Any) -> dict[str, Any]:
    """A valid legacy ordinary invoice: 12-digit code (0 + area 3401 + year 26 + batch + kind), 8-digit number.

    The batch varies as well as the number: about 10^11 keys, so that a load test's fresh legacy invoices do not
    meet each other (with one fixed code, 10^8 keys, an evening's 4,300 of them collided about one run in ten,
    and the gateway was right to answer the second ``duplicate``)."""
    inv = invoice(rng)
    inv["code"] = f"0340126{rng.randrange(1000):03d}11"
    inv["number"] = f"{rng.randrange(10**5):05d}{rng.randrange(994):03d}"  # no sandbox ending (994-999)
    inv["check_code"] = f"{rng.randrange(10**6):06d}"
    inv.update(overrides)
    return inv


def broken_invoices(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """One invoice per offline reason code, with the code it must get."""
    good = invoice(rng)
    tax_id = good["seller_tax_id"]
    wrong_check = tax_id[:17] + ("0" if tax_id[17] != "0" else "1")
    return [
        ("invalid_number", invoice(rng, number="12345")),
        ("missing_code", invoice(rng, number="12345678")),
        ("invalid_code", legacy_invoice(rng, code="123")),
        ("invalid_issue_date", invoice(rng, issue_date="2026-02-30")),
        ("invalid_amount", invoice(rng, amount="12.345")),
        ("invalid_amount", invoice(rng, amount=-5)),
        ("invalid_amount", invoice(rng, amount="1e3")),
        ("invalid_seller_tax_id", invoice(rng, seller_tax_id=wrong_check)),
        ("invalid_id_number", invoice(rng, user={"id": "u1", "device_id": "d1", "id_number": "110105194912310021"})),
        ("outside_campaign_window", invoice(rng, number="2534" + good["number"][4:], issue_date="2025-12-31")),
        ("seller_outside_region", invoice(rng, seller_tax_id=seller_tax_id(rng, "420102"))),
        ("invoice_outside_region", invoice(rng, number="2642" + good["number"][4:])),
        ("below_minimum_amount", invoice(rng, amount="99.99")),
        ("buyer_name_mismatch", invoice(rng, buyer_name="李四")),
        ("invalid_shape", {"number": good["number"]}),
        ("unknown_field", invoice(rng, user={"id": "u1", "device_id": "d1", "real_nme": "张三"})),
    ]
