"""An honest channel beside one hostile host (issue 17): its goodput with and without 300 slow uploads and 700
sockets that never finish their headers (loadtest/hostile.py), in alternating rounds of the same run.

    .venv/bin/python benchmarks/hostile_bench.py [--rounds 3] [--seconds 20] [--rate 5]

The gateway runs with its default limits (2 processes). The figure is a ratio against the same machine in the
same run: invoices accepted per second under attack over those accepted without (median of the rounds), with
the share of requests answered 202 and the latency the channel saw.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bench_stack, metric, save
from deploy.devstack import wait_until
from loadtest.hostile import Honest, honest, run_attack

DEFAULTS = {"GATEWAY_MAX_IN_FLIGHT": "8", "GATEWAY_TARGET_LATENCY_MS": "80"}


def round_of(url: str, port: int, seconds: float, rate: float, attacked: bool) -> dict[str, Any]:
    attacker = run_attack(port, 300, 700, seconds + 25) if attacked else None
    try:
        if attacker is not None:
            wait_until("the attack", lambda: metric(url, "gateway_requests_reading_body") >= 250, 30)
        result = honest(url, rate, seconds)
        tally = None
        if attacker is not None:
            out, _ = attacker.communicate(timeout=seconds + 60)
            tally = orjson.loads(out.splitlines()[-1])
    finally:
        if attacker is not None:
            attacker.kill()
    return {"attacked": attacked, "honest": msgspec.to_builtins(result), "goodput": result.goodput, "attack": tally}


def summary(rounds: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    def per_s(r: dict[str, Any]) -> float:
        h: dict[str, Any] = r["honest"]
        return float(h["invoices_accepted"]) / float(h["seconds"] or seconds)

    calm = [r for r in rounds if not r["attacked"]]
    hit = [r for r in rounds if r["attacked"]]
    ratios = [per_s(a) / per_s(c) for c, a in zip(calm, hit, strict=True) if per_s(c)]
    return {
        "accepted_per_s_ratio_median": round(statistics.median(ratios), 3),
        "goodput_calm_median": round(statistics.median(r["goodput"] for r in calm), 3),
        "goodput_attacked_median": round(statistics.median(r["goodput"] for r in hit), 3),
        "p50_ms_calm": statistics.median(r["honest"]["latency_ms_p50"] for r in calm),
        "p50_ms_attacked": statistics.median(r["honest"]["latency_ms_p50"] for r in hit),
        "p99_ms_calm": statistics.median(r["honest"]["latency_ms_p99"] for r in calm),
        "p99_ms_attacked": statistics.median(r["honest"]["latency_ms_p99"] for r in hit),
    }


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    rows = [
        "| figure | without the attack | with 300 slow + 700 idle connections |",
        "| --- | --- | --- |",
        f"| share of requests answered 202 (median of rounds) | {s['goodput_calm_median']:.3f} |"
        f" {s['goodput_attacked_median']:.3f} |",
        f"| latency p50 / p99 (ms) | {s['p50_ms_calm']} / {s['p99_ms_calm']} |"
        f" {s['p50_ms_attacked']} / {s['p99_ms_attacked']} |",
        f"| invoices accepted per second, attacked / calm (median of paired rounds) | 1 |"
        f" {s['accepted_per_s_ratio_median']:.3f} |",
    ]
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=5.0, help="honest requests per second (10 invoices each)")
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    with bench_stack(True, extra_env=DEFAULTS, name="bench-hostile") as stack:
        url = f"http://127.0.0.1:{stack.port}"
        for i in range(args.rounds):
            for attacked in (False, True):
                rounds.append(round_of(url, stack.port, args.seconds, args.rate, attacked))
                h: Honest = msgspec.convert(rounds[-1]["honest"], Honest)
                print(f"round {i + 1} {'attacked' if attacked else 'calm':8} {h}", flush=True)
    result = {"rounds": rounds, "summary": summary(rounds, args.seconds), "settings": vars(args)}
    save("hostile", "An honest channel beside one hostile host", result, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
