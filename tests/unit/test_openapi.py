"""The OpenAPI document: valid OpenAPI 3.1, equal to its copy in the repository, naming every route, every
problem code the routes raise and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import orjson
from openapi_spec_validator import validate

from core import report
from core.settings import Settings
from gateway import clients, codes, openapi, schemas
from gateway.app import create_app

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_document_is_valid_openapi_3_1_and_docs_openapi_json_is_it() -> None:
    validate(openapi.document())
    assert (ROOT / "docs" / "openapi.json").read_bytes() == openapi.text(), (
        "run: .venv/bin/python -m gateway.openapi > docs/openapi.json"
    )


def test_every_route_of_the_app_is_in_the_document_with_its_methods() -> None:
    settings = Settings(campaign_file=str(ROOT / "deploy" / "campaigns" / "hefei-2026.toml"))
    secrets = msgspec.structs.replace(settings.secrets, person_secret="p" * 16, receipt_signing_key="A" * 43 + "=")
    app = create_app(msgspec.structs.replace(settings, secrets=secrets))
    served = {(r.path, m.lower()) for r in app.routes for m in getattr(r, "methods", None) or () if m != "HEAD"}
    served = {(p, m) for p, m in served if not p.startswith("/docs/static")}
    documented = {(p, m) for p, ops in openapi.document()["paths"].items() for m in ops}
    assert served == documented


def test_the_catalogue_is_every_code_the_gateway_raises() -> None:
    used = set()
    for path in (ROOT / "gateway").glob("*.py"):
        used |= set(re.findall(r"\bcodes\.([A-Z_]+)\b", path.read_text()))
    used -= {"CATALOGUE", "BY_NAME", "TITLES"}
    names = {name for name in dir(codes) if isinstance(getattr(codes, name), codes.Code)}
    assert used == names, f"raised but not catalogued, or catalogued and never raised: {used ^ names}"
    assert len({c.name for c in codes.CATALOGUE}) == len(codes.CATALOGUE)
    listed = openapi.document()["info"]["x-problem-codes"]
    assert [(c["code"], c["status"]) for c in listed] == [(c.name, c.status) for c in codes.CATALOGUE]


def test_each_problem_response_lists_the_codes_of_its_status() -> None:
    responses = openapi.document()["components"]["responses"]
    for code in codes.CATALOGUE:
        schema = responses[f"Problem{code.status}"]["content"]["application/problem+json"]["schema"]
        assert code.name in schema["allOf"][1]["properties"]["code"]["enum"]
    assert b"cdn." not in orjson.dumps(openapi.document())


def test_the_report_schema_names_every_figure_the_report_writes_in_its_order() -> None:
    assert [f.encode_name for f in msgspec.structs.fields(schemas.Figures)] == report.columns()
    day = report.day(report.dt.date(2026, 3, 1), [])
    assert set(day) == {f.encode_name for f in msgspec.structs.fields(schemas.ReportDay)}


def test_every_role_is_a_tag_of_the_document() -> None:
    tags = {t["name"] for t in openapi.document()["tags"]}
    assert set(clients.ROLES) <= tags
    operations = [op for ops in openapi.document()["paths"].values() for op in ops.values()]
    assert {tag for op in operations for tag in op["tags"]} == tags
