"""The offline evaluation entry point, on a small copy of the shipped data (fast)."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from learnhub.recommender import evaluate
from learnhub.recommender.datasets import DEFAULT_DATA_DIR, read_dkt_file

pytestmark = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "oulad").is_dir(), reason="data/ not present")


def _write_dkt(frame: pd.DataFrame, path):
    lines = []
    for _, g in frame.groupby("learner", sort=False):
        lines += [str(len(g)), ",".join(map(str, g["skill"])), ",".join(map(str, g["correct"]))]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "assistments2009").mkdir()
    for name, n in (("builder_train.csv", 80), ("builder_test.csv", 30)):
        full = read_dkt_file(DEFAULT_DATA_DIR / "assistments2009" / name)
        _write_dkt(full[full["learner"] < n], root / "assistments2009" / name)
    (root / "oulad").mkdir()
    for name in ("courses", "assessments", "vle", "studentInfo"):
        shutil.copy(DEFAULT_DATA_DIR / "oulad" / f"{name}.csv", root / "oulad" / f"{name}.csv")
    reg = pd.read_csv(DEFAULT_DATA_DIR / "oulad" / "studentRegistration.csv")
    counts = reg["id_student"].value_counts()
    keep = set(counts[counts > 1].index[:600]) | set(counts[counts == 1].index[:1500])
    reg[reg["id_student"].isin(keep)].to_csv(root / "oulad" / "studentRegistration.csv", index=False)
    return root


def test_main_json_has_every_model_and_sane_metrics(small_data, capsys):
    assert evaluate.main(["--data-dir", str(small_data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    kt = {r["model"]: r for r in out["knowledge_tracing"]}
    assert set(kt) == {"per-skill rate", "BKT", "PFA (logistic)", "KnowledgeTracer"}
    for r in kt.values():
        assert 0.5 <= r["auc"] <= 1 and 0 < r["rmse"] < 1 and r["fit_seconds"] >= 0
    cr = {r["model"]: r for r in out["course_ranking"]}
    assert set(cr) == {"popularity", "implicit ALS", "CourseRecommender"}
    for r in cr.values():
        assert 0 <= r["ndcg@10"] <= 1 and 0 <= r["recall@1"] <= r["recall@10"] <= 1
        assert r["test_learners"] > 0


def test_main_prints_tables(small_data, capsys):
    assert evaluate.main(["--data-dir", str(small_data), "--only", "ranking"]) == 0
    text = capsys.readouterr().out
    assert "| model" in text and "NDCG@10" in text and "CourseRecommender" in text
    assert "Knowledge tracing" not in text


def test_missing_data_dir_is_an_error(tmp_path, capsys):
    assert evaluate.main(["--data-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_ranking_metrics_single_relevant_item():
    recs = pd.DataFrame({"learner": ["a", "a", "b", "b"], "item": ["x", "y", "x", "y"],
                         "rank": [1, 2, 1, 2]})
    m = evaluate.ranking_metrics(recs, pd.Series({"a": "x", "b": "y", "c": "z"}), k=10)
    assert m["recall@10"] == pytest.approx(2 / 3)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / 1.584962500721156) / 3)
    assert m["mrr"] == pytest.approx((1 + 0.5) / 3)


def test_oulad_split_has_no_future_in_training():
    train, items, targets, retakes = evaluate.oulad_split(None, cutoff_day=520)
    assert train["timestamp"].max() < 520
    assert set(targets.index) <= set(train["learner"])
    seen = set(zip(train["learner"], train["item"]))
    assert not any((u, i) in seen for u, i in targets.items())
    assert len(items) == 7 and retakes > 0
