"""The drift HTML report: self-contained, a plot per drifted feature, every data-derived text escaped."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mlops_provider.core.drift import compare_to_reference
from mlops_provider.core.drift_report import render_drift_html
from mlops_provider.core.profile import build_reference_profile

pytestmark = pytest.mark.unit

HOSTILE = "<script>alert(1)</script>"
ROWS = 4_000


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(2)
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, ROWS),
            "income": rng.lognormal(3, 0.4, ROWS),
            HOSTILE: rng.choice(["a", "b"], ROWS),
            "region": rng.choice(["north", "south"], ROWS),
        }
    )
    current = pd.DataFrame(
        {
            "age": rng.normal(48, 10, ROWS),  # drifted
            "income": rng.lognormal(3, 0.4, ROWS),
            HOSTILE: rng.choice(["a", "<b onload=x>"], ROWS),  # drifted, a hostile new category
            "region": rng.choice(["north", "south"], ROWS),
        }
    )
    profile = build_reference_profile(
        reference,
        numeric=["age", "income"],
        categorical=[HOSTILE, "region"],
        scores=rng.random(ROWS),
        importance={"age": 0.6, "income": 0.2, HOSTILE: 0.15, "region": 0.05},
    )
    return compare_to_reference(profile, current, current_scores=rng.random(ROWS) ** 2)


def render(report, **context) -> str:
    return render_drift_html(report, title="Drift of <churn>", context={"dataset": "churn", **context})


def test_the_page_is_self_contained(report):
    page = render(report)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|<script|<link|<img|<iframe|url\(", page, re.IGNORECASE)


def test_there_is_one_plot_per_drifted_feature_and_the_prediction(report):
    assert report.drifted_features == ["age", HOSTILE]
    assert report.prediction.drifted
    page = render(report)
    assert page.count("<svg") == 3
    plots = page[page.index("<h2>Drifted</h2>") : page.index("<h2>Features</h2>")]
    for name in ("prediction", "age", "&lt;script&gt;alert(1)&lt;/script&gt;"):
        assert f"<h3>{name}</h3>" in plots
    assert "<h3>income</h3>" not in plots and "<h3>region</h3>" not in plots
    # The numeric plot has a bar per bin and side; the categorical one a row per category.
    age_svg = plots[plots.index("<h3>age</h3>") :].split("</svg>")[0]
    assert age_svg.count("<rect") == 2 * 30


def test_every_feature_is_in_the_table_drifted_first(report):
    page = render(report)
    table = page[page.index("<h2>Features</h2>") :]
    order = [re.escape(n) for n in ("prediction", "age", "&lt;script&gt;", "income", "region")]
    assert re.search(".*".join(order), table, re.DOTALL)
    assert table.count('<td class="status ko">DRIFT</td>') == 3


def test_data_derived_text_is_escaped(report):
    page = render(report, window=HOSTILE)
    assert HOSTILE not in page
    assert "<b onload" not in page
    assert "&lt;b onload=x&gt;" in page  # the new category is listed, escaped
    assert "<title>Drift of &lt;churn&gt;</title>" in page


def test_a_stable_report_says_so_without_plots():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=2_000)})
    report = compare_to_reference(build_reference_profile(frame, numeric=["x"], categorical=[]), frame)
    page = render_drift_html(report, title="t", context={})
    assert "NO DRIFT" in page and "<svg" not in page and "<h2>Drifted</h2>" not in page


def test_a_drifted_class_prediction_is_plotted_as_class_shares():
    rng = np.random.default_rng(1)
    classes = np.array(["low", "mid", "high"], dtype=object)
    frame = pd.DataFrame({"x": rng.normal(size=3_000)})
    profile = build_reference_profile(
        frame, numeric=["x"], categorical=[], scores=rng.choice(classes, 3_000, p=[0.6, 0.3, 0.1])
    )
    report = compare_to_reference(
        profile, frame, current_scores=rng.choice(classes, 3_000, p=[0.2, 0.3, 0.5])
    )
    page = render(report)
    plots = page[page.index("<h2>Drifted</h2>") : page.index("<h2>Features</h2>")]
    assert "<h3>prediction</h3>" in plots and ">high</text>" in plots
    assert "jensen_shannon" in plots


def test_the_page_shows_the_weights_and_which_retrain_rule_fired(report):
    from mlops_provider.core.retrain import describe_rules

    rules = describe_rules({**report.summary(), "status": "checked"})
    assert rules.startswith("feature_share FIRED (2 of 4 features drifted, importance-weighted share 0.75")
    page = render(report, **{"retrain rules": rules})
    assert "retrain rules" in page
    assert "feature_share FIRED" in page and "prediction FIRED" in page
    assert '<td class="num">60.0%</td>' in page  # age's weight
    assert "importance" in page and "Weight" in page
