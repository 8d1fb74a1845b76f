"""The admission decision's own cost, in µs, under a flood (pure Python, no server).

    .venv/bin/python benchmarks/admission_cost.py

A process whose adapted limit is below its ceiling, with a flooding channel holding its share of the slots and
a light one beside it: the flood's refusal (``refusal`` then ``may_wait``, as the Shed middleware asks) and the
light channel's admission. Medians of 7 runs of 20,000 decisions.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ratelimit.shed import Admission, SheddingConfig


def flooded() -> Admission:
    config = SheddingConfig(
        max_in_flight=8,
        min_in_flight=4,
        target_latency_s=0.08,
        max_wait_s=0.025,
        busy_share=0.5,
        weights={"flood": 1.0, "calm": 1.0},
    )
    a = Admission(config)
    a.concurrency.limit = 5.0  # cut by the flood's latency
    for _ in range(50):
        a.enter("flood")
        a.leave("flood")
    for _ in range(3):
        a.enter("flood")
    a.enter("calm")
    return a


def median_us(decide: Callable[[], object], n: int = 20_000) -> tuple[float, list[float]]:
    runs = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(n):
            decide()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs), runs


def main() -> None:
    a = flooded()

    def flood() -> object:
        reason = a.refusal("flood")
        return a.may_wait("flood") if reason == "in_flight" else reason

    assert a.refusal("flood") == "fair_share" and a.refusal("calm") is None
    for name, decide in (("flood refused", flood), ("light channel admitted", lambda: a.refusal("calm"))):
        median, runs = median_us(decide)
        print(f"{name}: {median:.2f} µs (runs {', '.join(f'{r:.2f}' for r in runs)})")


if __name__ == "__main__":
    main()
