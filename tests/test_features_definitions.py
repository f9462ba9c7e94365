"""Feature definitions: complete, documented, and portable to Spark SQL."""

from __future__ import annotations

from pathlib import Path

import sqlglot

from safetynet.features.catalogue import FEAST_RESULT, render_markdown
from safetynet.features.compile import feature_sql, used_tables
from safetynet.features.definitions import (
    DIMENSIONS,
    FEATURES,
    audit_attribute_names,
    evidence_names,
    model_feature_names,
    output_columns,
)


def test_at_least_60_model_features_over_every_dimension():
    names = model_feature_names()
    assert len(names) >= 60 and len(set(names)) == len(names)
    assert {f.dimension for f in FEATURES if f.role == "model"} == set(DIMENSIONS)
    forbidden = set(audit_attribute_names()) | set(evidence_names()) | {"household_key",
                                                                       "as_of_date"}
    assert not forbidden & set(names)
    assert len(output_columns()) == len(set(output_columns()))


def test_every_feature_has_missing_rule_descriptions_and_templates():
    for f in FEATURES:
        assert f.missing.rule in ("zero", "null", "constant"), f.name
        assert f.description_en and f.description_zh, f.name
        sample = "2024-05-01" if f.dtype in ("date", "str") else 2.4
        assert f.sentence(sample, "en") and f.sentence(sample, "zh"), f.name
    assert "2.4×" in next(f for f in FEATURES if f.name == "oop_3m_to_income").sentence(2.4)


def test_generated_sql_transpiles_to_spark():
    spark = feature_sql("spark")  # raises on anything sqlglot cannot express in Spark
    assert "read_parquet" not in spark.lower() and "LEAD(" in spark
    sqlglot.parse_one(spark, read="spark")  # and Spark's dialect reads it back
    assert "v_claims AS (SELECT *, CAST(NULL AS DATE)" in feature_sql(
        "duckdb", frozenset(used_tables()))
    duck = feature_sql()
    assert "QUALIFY" not in duck and "date_diff" not in duck.lower()


def test_generated_catalogue_document_is_current():
    doc = Path(__file__).parents[1] / "docs" / "features.md"
    assert doc.read_text(encoding="utf-8") == render_markdown(FEAST_RESULT) + "\n", (
        "docs/features.md is stale: run `safetynet features catalogue`")
