import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"


def test_every_alert_links_to_a_runbook_section_that_exists() -> None:
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    sections = {h.strip().lower() for h in re.findall(r"^## (.+)$", (DEPLOY / "RUNBOOK.md").read_text(), re.M)}
    alerts = re.findall(r"- alert: (\w+)", rules)
    links = re.findall(r"RUNBOOK\.md#([a-z0-9]+)", rules)
    assert len(links) == len(alerts) > 10
    assert set(links) <= sections


def test_every_section_says_how_to_confirm_and_what_to_do() -> None:
    text = (DEPLOY / "RUNBOOK.md").read_text()
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.splitlines()[0]
        assert "**Confirm**" in section and "**Do**" in section, name
