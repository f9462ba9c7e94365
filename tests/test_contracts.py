from pathlib import Path

from safetynet.contracts import DEPARTMENTS, TABLES, pandera_schema, render_markdown


def test_every_department_delivers_and_every_table_has_dates_and_key():
    assert {t.department for t in TABLES} == set(DEPARTMENTS)
    for t in TABLES:
        names = t.column_names
        assert t.event_date in names and t.knowledge_date in names, t.name
        assert set(t.primary_key) <= set(names), t.name
        assert len(names) == len(set(names)), t.name
        assert set(pandera_schema(t).columns) == set(names)


def test_generated_contract_document_is_current():
    doc = Path(__file__).parents[1] / "docs" / "contracts.md"
    assert doc.read_text(encoding="utf-8") == render_markdown() + "\n", (
        "docs/contracts.md is stale: run `safetynet contracts`"
    )
