"""Validate the at-risk model on OULAD, and fit the model the platform uses.

``python -m learnhub.extensions.analytics.oulad [data_dir]`` prints AUC at day 60 and day 120 for the
model and the baseline, measured in the same run on the same split.

Protocol: OULAD's assessment results cover the October ("J") presentations of 2013 and 2014. The
models are trained on 2013J and tested on 2014J — a split in time, as a course would use last year to
judge this year. The label is ``final_result`` in {Fail, Withdrawn}. At a cut-off day, only learners
still registered are scored (one who already unregistered has left; no prediction is needed) and only
assessments due and submissions made by that day are used.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from .risk import AtRiskClassifier, PriorRiskBaseline, features_at

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "oulad"
TRAIN, TEST = "2013J", "2014J"


def load(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, pd.DataFrame]:
    data_dir = Path(data_dir)
    return {name: pd.read_csv(data_dir / f"{name}.csv") for name in
            ("studentInfo", "studentRegistration", "assessments", "studentAssessment")}


def presentation_tables(data: dict, module: str, presentation: str, cutoff: float):
    """Learners (with label and demographics) still registered at ``cutoff``, and their features."""
    info = data["studentInfo"]
    info = info[(info.code_module == module) & (info.code_presentation == presentation)]
    registration = data["studentRegistration"]
    registration = registration[(registration.code_module == module)
                                & (registration.code_presentation == presentation)]
    gone = registration[registration.date_unregistration.notna()
                        & (registration.date_unregistration <= cutoff)].id_student
    info = info[~info.id_student.isin(gone)].set_index("id_student")
    assessments = data["assessments"]
    assessments = assessments[(assessments.code_module == module)
                              & (assessments.code_presentation == presentation)
                              & (assessments.assessment_type != "Exam") & assessments.date.notna()]
    due = assessments.rename(columns={"id_assessment": "assessment", "date": "day"})[["assessment", "day"]]
    results = data["studentAssessment"]
    results = results[results.id_assessment.isin(assessments.id_assessment)]
    submissions = results.rename(columns={"id_student": "learner", "id_assessment": "assessment",
                                          "date_submitted": "day"})[["learner", "assessment", "day", "score"]]
    features = features_at(due, submissions, info.index, cutoff)
    label = info.final_result.isin(["Fail", "Withdrawn"]).astype(int)
    return info, features, label


def tables(data: dict, presentation: str, cutoff: float):
    parts = []
    for module in sorted(data["studentInfo"].query("code_presentation == @presentation").code_module.unique()):
        info, features, label = presentation_tables(data, module, presentation, cutoff)
        if len(info):
            parts.append((info, features, label))
    info = pd.concat([p[0] for p in parts])
    features = pd.concat([p[1] for p in parts])
    label = pd.concat([p[2] for p in parts])
    return info, features, label


def evaluate(data_dir: Path = DEFAULT_DATA_DIR, cutoffs=(60, 120)) -> dict:
    """AUC of the at-risk model and of the baseline at each cut-off, trained on 2013J, tested on 2014J."""
    data = load(data_dir)
    out = {"train": TRAIN, "test": TEST, "label": "final_result in {Fail, Withdrawn}", "cutoffs": {}}
    for cutoff in cutoffs:
        train_info, train_x, train_y = tables(data, TRAIN, cutoff)
        test_info, test_x, test_y = tables(data, TEST, cutoff)
        model = AtRiskClassifier().fit(train_x, train_y)
        baseline = PriorRiskBaseline().fit(train_info, train_y)
        out["cutoffs"][cutoff] = {
            "n_train": int(len(train_y)), "n_test": int(len(test_y)),
            "at_risk_rate_test": round(float(test_y.mean()), 3),
            "auc_model": round(float(roc_auc_score(test_y, model.predict_proba(test_x)[:, 1])), 4),
            "auc_baseline": round(float(roc_auc_score(test_y, baseline.predict_proba(test_info)[:, 1])), 4),
        }
    return out


@functools.lru_cache(maxsize=1)
def platform_model(data_dir: str = str(DEFAULT_DATA_DIR)) -> AtRiskClassifier | None:
    """The model the platform ranks learners with: fitted on both J presentations at several cut-offs
    (so it holds early and late in a course). None if the data is missing."""
    if not (Path(data_dir) / "studentInfo.csv").is_file():
        return None
    data = load(Path(data_dir))
    xs, ys = [], []
    for presentation in (TRAIN, TEST):
        for cutoff in (30, 60, 120):
            _, x, y = tables(data, presentation, cutoff)
            xs.append(x)
            ys.append(y)
    return AtRiskClassifier().fit(pd.concat(xs), pd.concat(ys))


def main(argv=None) -> None:
    import json

    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(evaluate(Path(argv[0]) if argv else DEFAULT_DATA_DIR), indent=2))


if __name__ == "__main__":
    main()
