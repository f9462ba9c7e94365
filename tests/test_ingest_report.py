"""The text ingest report stays readable at national sizes."""

from safetynet.features.report import render


def test_columns_stay_apart_for_hundreds_of_millions_of_rows():
    big = {"rows_read": 123_456_789, "accepted": 123_000_000, "rejected": 456_789,
           "legacy_ids_converted": 12_345_678, "unmatched": 1_234, "match_rate": 0.99,
           "rejected_by_reason": {"duplicate": 456_789}}
    report = {"delivery_id": "d", "delivery_date": "2026-01-31",
              "departments": [{"department": "hrss", **big}],
              "tables": [{"table": "contributions", "department": "hrss", **big}]}
    row = next(line for line in render(report).splitlines() if line.startswith("  contrib"))
    assert row.split()[1:6] == ["123,456,789", "123,000,000", "456,789", "12,345,678", "1,234"]
