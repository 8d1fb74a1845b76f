import random

import pytest

from core.checks import id_number_problem, uscc_check_char, uscc_division, uscc_problem
from loadtest import sample


def test_spec_example_resident_id_is_valid() -> None:
    assert id_number_problem("11010519491231002X") is None


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("110105194912310021", "check digit mismatch"),
        ("11010519491231002x", "17 digits and a check character (0-9 or X)"),
        ("1101051949123100", "17 digits and a check character (0-9 or X)"),
        ("A1010519491231002X", "17 digits and a check character (0-9 or X)"),
    ],
)
def test_bad_resident_ids_are_refused(number: str, problem: str) -> None:
    assert id_number_problem(number) == problem


def test_uscc_check_character_follows_gb_32100() -> None:
    # Worked by hand from the weights: 9*1+1*3+3*9+4*27+0*19+1*26+0*16+4*17+(M=21)*20+(A=10)*29+1*25+
    # (W=28)*13+0*8+5*24+5*10+6*30+(X=29)*28 = 2502; 2502 mod 31 = 22; (31 - 22) mod 31 = 9 -> "9".
    assert uscc_check_char("91340104MA1W0556X") == "9"
    assert uscc_problem("91340104MA1W0556X9") is None
    assert uscc_problem("91340104MA1W0556X0") == "check character mismatch"


@pytest.mark.parametrize("code", ["9134010", "91340104MA1W0556X99", "91340104MA1I0556X9", "91A40104MA1W0556X9"])
def test_malformed_uscc_is_refused_for_shape(code: str) -> None:
    problem = uscc_problem(code)
    assert problem is not None and problem != "check character mismatch"


def test_generated_identifiers_are_valid() -> None:
    rng = random.Random(7)
    for _ in range(200):
        tax_id = sample.seller_tax_id(rng)
        assert uscc_problem(tax_id) is None
        assert uscc_division(tax_id) == "340104"
        assert id_number_problem(sample.id_number(rng)) is None


def test_sample_invoices_never_end_in_a_sandbox_ending_unless_asked() -> None:
    rng = random.Random(996)
    numbers = [sample.invoice(rng)["number"] for _ in range(3000)] + [
        sample.legacy_invoice(rng)["number"] for _ in range(3000)
    ]
    assert not [n for n in numbers if n[-3:] in ("995", "996", "997", "998", "999")]


def test_blacklist_entries_are_stored_as_the_gateways_hashes_and_bad_ones_refused() -> None:
    import pytest

    from core.hashing import keyed_hash
    from workers.blacklist import BadLine, ref

    assert ref("person", "11010519491231002X", "s" * 16) == keyed_hash("s" * 16, "id:11010519491231002X")
    assert ref("device", "demo-channel:d1", "s" * 16) == keyed_hash("s" * 16, "device:demo-channel:d1")
    assert ref("person", "demo-channel:u1", "s" * 16) == keyed_hash("s" * 16, "user:demo-channel:u1")
    for kind, value in [("person", "110105194912310021"), ("device", "d1"), ("shop", "x:y"), ("seller", "123")]:
        with pytest.raises(BadLine):
            ref(kind, value, "s" * 16)
