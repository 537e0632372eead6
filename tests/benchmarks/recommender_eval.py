"""Full offline evaluation of learnhub.recommender (the same code as `learnhub recommender evaluate`).

As a script (prints the tables; pass --json for machine-readable output):

    python tests/benchmarks/recommender_eval.py [--data-dir DIR] [--json]

As a pytest-benchmark module (not collected by default because of its file name; about a minute):

    python -m pytest tests/benchmarks/recommender_eval.py --benchmark-enable -q

The pytest run checks quality targets only (no timing assertions): KnowledgeTracer AUC ≥ 0.84 on the
ASSISTments 2009 DKT split and above every baseline; CourseRecommender NDCG@10 above popularity
and implicit ALS on OULAD.
"""
from __future__ import annotations

import sys

from learnhub.recommender import evaluate


def _run():
    from learnhub.recommender.datasets import DEFAULT_DATA_DIR

    return {
        "knowledge_tracing": evaluate.evaluate_tracing(DEFAULT_DATA_DIR),
        "course_ranking": evaluate.evaluate_ranking(DEFAULT_DATA_DIR),
    }


def test_recommender_offline_evaluation(benchmark):
    results = benchmark.pedantic(_run, rounds=1, iterations=1)
    kt = {r["model"]: r for r in results["knowledge_tracing"]}
    benchmark.extra_info.update({f"auc[{m}]": r["auc"] for m, r in kt.items()})
    assert kt["KnowledgeTracer"]["auc"] >= 0.84
    assert all(kt["KnowledgeTracer"]["auc"] > r["auc"] for m, r in kt.items() if m != "KnowledgeTracer")
    cr = {r["model"]: r for r in results["course_ranking"]}
    benchmark.extra_info.update({f"ndcg@10[{m}]": r["ndcg@10"] for m, r in cr.items()})
    assert cr["CourseRecommender"]["ndcg@10"] > cr["popularity"]["ndcg@10"]
    assert cr["CourseRecommender"]["ndcg@10"] > cr["implicit ALS"]["ndcg@10"]


if __name__ == "__main__":
    sys.exit(evaluate.main(sys.argv[1:]))
