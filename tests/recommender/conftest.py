"""Fixtures for the recommender tests: small synthetic data that runs in milliseconds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def simulate_answers(n_learners: int = 60, n_skills: int = 5, length: int = 40, seed: int = 0,
                     learner_prefix: str = "u") -> pd.DataFrame:
    """Learners who get better at a skill the more they practise it (so history matters)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_learners):
        ability = rng.normal()
        practice = np.zeros(n_skills)
        for t in range(length):
            s = int(rng.integers(n_skills))
            logit = ability + 0.4 * practice[s] - 1.0 + 0.3 * s
            c = int(rng.random() < 1 / (1 + np.exp(-logit)))
            practice[s] += 1
            rows.append((f"{learner_prefix}{u}", f"skill{s}", c, t))
    return pd.DataFrame(rows, columns=["learner", "skill", "correct", "order"])


@pytest.fixture(scope="session")
def answers() -> pd.DataFrame:
    return simulate_answers()


@pytest.fixture(scope="session")
def new_answers() -> pd.DataFrame:
    return simulate_answers(n_learners=20, seed=1, learner_prefix="v")


@pytest.fixture(scope="session")
def simulate():
    """The generator itself, for tests that need a custom sample."""
    return simulate_answers
