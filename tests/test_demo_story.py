"""The demo's need story reads the figures `safetynet train` prints."""

from safetynet.demo import need_story, printed_metrics


def test_need_story_compares_the_printed_need_figures():
    first = ("registered x v1 as challenger\n"
             "  test_need_precision_at_5pct                0.4100\n"
             "  test_need_recall_ratio_min_district        0.6600\n"
             "  need model: entry model alone (cold start: no visits)\n")
    second = "  test_need_precision_at_5pct                0.5010\n"
    before, after = printed_metrics(first), printed_metrics(second)
    assert before == {"test_need_precision_at_5pct": 0.41,
                      "test_need_recall_ratio_min_district": 0.66}
    lines = need_story(before, after)
    row = next(r for r in lines if "test_need_precision_at_5pct" in r)
    assert row.split()[-2:] == ["0.410", "0.501"]
    assert next(r for r in lines if "district" in r).split()[-1] == "n/a"
