"""Loaders for the public data sets the recommender is evaluated on.

This is the only module of ``learnhub.recommender`` that reads files: the models take
DataFrames, so they can be fed from the event log in production and from these
files offline. The default data directory is the repository's ``data/`` folder,
resolved relative to this file so it works from any working directory.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def _data_dir(data_dir: str | Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR


def read_dkt_file(path: str | Path, learner_offset: int = 0) -> pd.DataFrame:
    """Read one file of the DKT three-line format into a long answers table.

    Each learner takes three lines: the number of answers, the comma-separated skill ids
    and the comma-separated 0/1 correctness. The result has columns ``learner``, ``skill``,
    ``correct`` and ``order`` (position within the learner; the only time information).
    ``learner_offset`` keeps learner ids of train and test files disjoint.
    """
    path = Path(path)
    lines = [line.strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line]
    if len(lines) % 3:
        raise ValueError(f"{path}: expected 3 lines per learner, got {len(lines)} lines")
    learners, skills, correct, order = [], [], [], []
    for i in range(0, len(lines), 3):
        n = int(lines[i].rstrip(","))
        s = [int(v) for v in lines[i + 1].split(",") if v != ""]
        c = [int(v) for v in lines[i + 2].split(",") if v != ""]
        if not (len(s) == len(c) == n):
            raise ValueError(f"{path}: learner block at line {i + 1} has inconsistent lengths")
        learner = learner_offset + i // 3
        learners.extend([learner] * n)
        skills.extend(s)
        correct.extend(c)
        order.extend(range(n))
    return pd.DataFrame(
        {"learner": learners, "skill": skills, "correct": correct, "order": order}
    ).astype({"learner": "int64", "skill": "int64", "correct": "int8", "order": "int64"})


def load_assistments2009(
    data_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, test)`` answers of the ASSISTments 2009 DKT split.

    Test learner ids start at 1,000,000 so the two sets never share a learner.
    """
    folder = _data_dir(data_dir) / "assistments2009"
    train = read_dkt_file(folder / "builder_train.csv")
    test = read_dkt_file(folder / "builder_test.csv", learner_offset=1_000_000)
    return train, test


# OULAD presentations: "2013B" starts in February, "2013J" in October.
def presentation_start(code: str) -> int:
    """Approximate start of a presentation in days since 1 Jan 2013 (B = February, J = October)."""
    year = int(code[:4])
    month = {"B": 2, "J": 10}[code[4]]
    return (year - 2013) * 365 + (month - 1) * 30


def load_oulad(data_dir: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Return the OULAD tables as DataFrames keyed by file stem.

    Adds ``start_day`` (days since 2013-01-01 of the presentation start) to ``courses``,
    and ``registration_day`` (absolute day of registration) to ``studentRegistration``,
    so registrations from different presentations can be ordered in time.
    """
    folder = _data_dir(data_dir) / "oulad"
    tables = {
        name: pd.read_csv(folder / f"{name}.csv")
        for name in ("courses", "assessments", "studentInfo", "studentRegistration", "vle")
    }
    courses = tables["courses"]
    courses["start_day"] = courses["code_presentation"].map(presentation_start)
    reg = tables["studentRegistration"]
    start = reg["code_presentation"].map(presentation_start)
    reg["registration_day"] = start + reg["date_registration"].fillna(0)
    return tables
