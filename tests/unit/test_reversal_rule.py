"""Who may reverse what (core/reversal.py, gateway/reversals.py): each answer of a reversal from what is known."""

from __future__ import annotations

from gateway.reversals import decide


def test_only_the_submitting_channels_reversal_takes_effect_at_once() -> None:
    row = {"owner": "a", "status": "eligible", "recorded_now": True, "confirmed": False, "refused": False}
    assert decide("a", row) == "reversed"
    assert decide("b", row) == "pending_confirmation"
    assert decide("b", {**row, "owner": None, "status": None}) == "recorded"
    assert decide("b", {**row, "recorded_now": False, "refused": True}) == "refused"
    assert decide("b", {**row, "recorded_now": True, "refused": True}) == "pending_confirmation"  # another red
    assert decide("b", {**row, "status": "reversed"}) == "already_reversed"
