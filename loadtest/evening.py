"""The load shape of a promotion evening: channels ramp up through the evening, a sharp peak when the
promotion opens (20:00), a long plateau, then the drop after it closes.

Pure, so that it is tested without locust; loadtest/locustfile.py's EveningPromotion follows it.
"""

from __future__ import annotations

# (end of the phase as a share of the evening, users at its start and at its end as shares of the peak)
PHASES = (
    ("ramp", 0.25, 0.10, 0.50),
    ("peak", 0.40, 1.00, 1.00),
    ("plateau", 0.80, 0.60, 0.60),
    ("drop", 1.00, 0.15, 0.15),
)


def users_at(share_of_evening: float, peak_users: int) -> int | None:
    """How many users the evening has at this point (None once it is over); at least 2: a channel and the draw
    service."""
    start = 0.0
    for _, end, first, last in PHASES:
        if share_of_evening < end:
            share = first + (last - first) * (share_of_evening - start) / (end - start)
            return max(2, round(share * peak_users))
        start = end
    return None
