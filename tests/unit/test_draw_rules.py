"""The campaign's prize rules (``[draw]``): the shipped campaigns hold; rules that cannot hold are each named."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import campaign as campaigns

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "deploy" / "campaigns" / "hefei-2026.toml", ROOT / "tests" / "campaigns" / "hefei-2026-sharded.toml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_shipped_campaigns_have_prizes_within_their_budget(path: Path) -> None:
    campaign, problems = campaigns.read(path)
    assert problems == [] and campaign is not None
    assert campaign.draw.periodic.tiers and campaign.draw.instant.tiers


def test_prize_rules_that_cannot_hold_are_each_named(tmp_path: Path) -> None:
    text = SHIPPED[0].read_text(encoding="utf-8")
    broken = text.replace("budget_fen = 10_000_000", "budget_fen = 100_000").replace('odds = "1/20"', 'odds = "3/2"')
    broken = broken.replace('{ name = "second"', '{ name = "first"')
    path = tmp_path / "broken.toml"
    path.write_text(broken, encoding="utf-8")
    _, problems = campaigns.read(path)
    where = {w for w, _ in problems}
    assert {"draw", "draw.budget_fen", "draw.instant.daily_budget_fen", "draw.instant.tiers[0].odds"} <= where
