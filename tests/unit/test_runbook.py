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
