"""Input checks shared by the estimators.

Every public entry point validates its DataFrame here so that a caller (the hub service,
a notebook) gets a ``ValueError`` that names the offending column instead of a
``KeyError`` or a silent wrong answer deep inside numpy.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def require_frame(X, name: str = "X") -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(X).__name__}")
    return X


def require_columns(X: pd.DataFrame, columns: Iterable[str], name: str = "X") -> None:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(
            f"{name} is missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"got columns {list(X.columns)}"
        )


def _order_key(X: pd.DataFrame, name: str) -> np.ndarray:
    """Return a float64 sort key from ``order`` (preferred) or ``timestamp``."""
    if "order" in X.columns:
        col = X["order"]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise ValueError(f"{name} column 'order' must be numeric, got dtype {col.dtype}")
        if col.isna().any():
            raise ValueError(f"{name} column 'order' has missing values")
        return col.to_numpy(dtype="float64")
    if "timestamp" in X.columns:
        col = X["timestamp"]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.to_numpy(dtype="float64")
        else:
            try:
                values = pd.to_datetime(col, utc=True).astype("int64").to_numpy(dtype="float64")
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{name} column 'timestamp' must be numeric or datetime-like: {exc}"
                ) from None
        if np.isnan(values).any() or col.isna().any():
            raise ValueError(f"{name} column 'timestamp' has missing values")
        return values
    raise ValueError(
        f"{name} is missing required column 'order' (or 'timestamp'); got columns {list(X.columns)}"
    )


def check_answers(X, *, allow_unlabelled: bool = False, allow_empty: bool = False,
                  name: str = "X") -> pd.DataFrame:
    """Validate an answers table and return a normalised copy.

    The copy has columns ``learner``, ``skill`` (both as given), ``correct`` (float: 0.0/1.0, or
    NaN for a not-yet-answered row when ``allow_unlabelled``) and ``_key`` (float sort key from
    ``order`` or ``timestamp``). The index is a fresh RangeIndex in input order.
    """
    X = require_frame(X, name)
    require_columns(X, ["learner", "skill", "correct"], name)
    if len(X) == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: need at least one row with 'learner', 'skill', 'correct'")
    for col in ("learner", "skill"):
        if X[col].isna().any():
            raise ValueError(f"{name} column {col!r} has missing values")
    correct = X["correct"]
    if pd.api.types.is_bool_dtype(correct):
        correct = correct.astype("float64")
    elif not pd.api.types.is_numeric_dtype(correct):
        try:
            correct = pd.to_numeric(correct)
        except (ValueError, TypeError):
            raise ValueError(
                f"{name} column 'correct' must hold 0/1 values, got dtype {X['correct'].dtype}"
            ) from None
    correct = correct.astype("float64").to_numpy()
    known = ~np.isnan(correct)
    if not allow_unlabelled and not known.all():
        raise ValueError(f"{name} column 'correct' has missing values")
    if not np.isin(correct[known], (0.0, 1.0)).all():
        raise ValueError(f"{name} column 'correct' must hold only 0 and 1")
    key = _order_key(X, name)
    return pd.DataFrame(
        {
            "learner": X["learner"].to_numpy(),
            "skill": X["skill"].to_numpy(),
            "correct": correct,
            "_key": key,
        }
    )


def sorted_positions(answers: pd.DataFrame) -> np.ndarray:
    """Positions that sort ``answers`` by learner then time; ties keep input order."""
    learner_codes = pd.factorize(answers["learner"])[0]
    return np.lexsort((np.arange(len(answers)), answers["_key"].to_numpy(), learner_codes))
