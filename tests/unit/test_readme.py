"""The READMEs stay true to the code: the configuration table names every setting, and links lead somewhere."""

import re
from pathlib import Path

from core.settings import variables

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "README.md",
    ROOT / "deploy" / "README.md",
    *(ROOT / "docs").glob("*.md"),
]


def test_configuration_table_lists_every_setting_and_no_other() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `GATEWAY_")]
    listed = {name for row in rows for name in re.findall(r"`(GATEWAY_[A-Z0-9_]+)`", row.split(" | ")[0])}
    assert listed == {var for var, _, _ in variables()}


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_lead_to_files_and_headings_that_exist() -> None:
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.is_relative_to(ROOT):
                continue  # outside the repository (../shared/SPEC.md): not ours to check
            assert file.exists(), f"{doc.relative_to(ROOT)}: {target}"
            if anchor and file.suffix == ".md":
                headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}
                assert anchor in headings, f"{doc.relative_to(ROOT)}: {target}"
