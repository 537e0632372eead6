"""Offline evaluation: ``learnhub recommender evaluate [--data-dir DIR] [--json] ...``.

Two benchmarks, every number measured in the same run:

* **Knowledge tracing** on ASSISTments 2009 (DKT split): fit on ``builder_train.csv``, predict every
  answer of ``builder_test.csv`` from the learner's earlier answers; AUC, RMSE and fit seconds for
  the per-skill rate, BKT, PFA and :class:`KnowledgeTracer`.
* **Course ranking** on OULAD: which module a learner registers for next, split by time. Train on
  all registrations before ``--cutoff-day`` (days since 2013-01-01; default 520, the middle of the
  2014B presentations, before any 2014J registration). Test learners have at least one training
  registration; their target is the module of their first registration on/after the cutoff, when
  it is a module they have not registered for before (retakes of the same module are excluded:
  no recommender that hides already-taken courses can hit them, and the count is reported).
  NDCG@10, Recall@10, Recall@1 and MRR for popularity, implicit ALS and :class:`CourseRecommender`.
  OULAD has only 7 modules, so Recall@10 is 1 for any method that ranks every unseen module;
  NDCG@10, Recall@1 and MRR are the discriminating numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .baselines import ImplicitALS, PopularityRecommender
from .bkt import BKT
from .datasets import DEFAULT_DATA_DIR, load_assistments2009, load_oulad
from .ranking import CourseRecommender
from .tracing import PFA, KnowledgeTracer, SkillRateBaseline

# Faculty of each OULAD module, from Kuzilek et al. (2017), Table 1 of the data descriptor.
OULAD_DOMAINS = {"AAA": "social sciences", "BBB": "social sciences", "GGG": "social sciences",
                 "CCC": "stem", "DDD": "stem", "EEE": "stem", "FFF": "stem"}


def tracing_models() -> dict:
    return {
        "per-skill rate": SkillRateBaseline(),
        "BKT": BKT(),
        "PFA (logistic)": PFA(),
        "KnowledgeTracer": KnowledgeTracer(),
    }


def evaluate_tracing(data_dir, max_learners: int | None = None) -> list[dict]:
    """Fit each tracer on the train learners, score the test learners' answers."""
    train, test = load_assistments2009(data_dir)
    if max_learners:
        train = train[train["learner"].isin(pd.unique(train["learner"])[:max_learners])]
        test = test[test["learner"].isin(pd.unique(test["learner"])[:max_learners])]
    y = test["correct"].to_numpy()
    results = []
    for name, model in tracing_models().items():
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(train)
        fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
        p = model.predict_proba(test)[:, 1]
        results.append({
            "model": name,
            "auc": float(roc_auc_score(y, p)),
            "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
            "fit_seconds": fit_s,
            "fit_cpu_seconds": fit_cpu,
            "train_answers": int(len(train)),
            "test_answers": int(len(test)),
        })
    return results


def oulad_split(data_dir, cutoff_day: float = 520.0):
    """Return (interactions, items, targets, n_retakes) for the next-module task."""
    tables = load_oulad(data_dir)
    reg = tables["studentRegistration"]
    interactions = pd.DataFrame({
        "learner": reg["id_student"], "item": reg["code_module"],
        "timestamp": reg["registration_day"].astype(float),
    }).sort_values(["learner", "timestamp"], kind="stable")
    train = interactions[interactions["timestamp"] < cutoff_day]
    later = interactions[(interactions["timestamp"] >= cutoff_day)
                         & interactions["learner"].isin(train["learner"])]
    first = later.groupby("learner", sort=True).head(1)
    seen = set(zip(train["learner"], train["item"]))
    is_new = np.array([(u, i) not in seen for u, i in zip(first["learner"], first["item"])],
                      dtype=bool)
    targets = first[is_new].set_index("learner")["item"]
    courses = tables["courses"]
    vle = tables["vle"]
    activity = vle.groupby("code_module")["activity_type"].agg(lambda s: sorted(set(s)))
    modules = sorted(courses["code_module"].unique())
    items = pd.DataFrame({
        "item": modules,
        "title": [f"module {m}" for m in modules],
        "description": [" ".join(activity.get(m, [])) for m in modules],
        "tags": [[OULAD_DOMAINS.get(m, "")] for m in modules],
    })
    return train.reset_index(drop=True), items, targets, int((~is_new).sum())


def ranking_metrics(recs: pd.DataFrame, targets: pd.Series, k: int = 10) -> dict:
    """NDCG@k, Recall@k, Recall@1 and MRR with one relevant item per learner."""
    hit_rank = {}
    for learner, item, rank in zip(recs["learner"], recs["item"], recs["rank"]):
        if targets.get(learner) == item:
            hit_rank[learner] = rank
    ranks = np.array([hit_rank.get(u, np.inf) for u in targets.index], dtype=float)
    within = ranks <= k
    return {
        f"ndcg@{k}": float(np.mean(np.where(within, 1.0 / np.log2(ranks + 1), 0.0))),
        f"recall@{k}": float(np.mean(within)),
        "recall@1": float(np.mean(ranks <= 1)),
        "mrr": float(np.mean(np.where(np.isfinite(ranks), 1.0 / ranks, 0.0))),
    }


def ranking_models() -> dict:
    return {
        "popularity": PopularityRecommender(),
        "implicit ALS": ImplicitALS(),
        "CourseRecommender": CourseRecommender(popularity_half_life=180.0),
    }


def evaluate_ranking(data_dir, cutoff_day: float = 520.0, k: int = 10) -> list[dict]:
    train, items, targets, retakes = oulad_split(data_dir, cutoff_day)
    results = []
    for name, model in ranking_models().items():
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(train, items)
        fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
        recs = model.recommend(list(targets.index), k=k)
        row = {"model": name, **ranking_metrics(recs, targets, k), "fit_seconds": fit_s,
               "fit_cpu_seconds": fit_cpu,
               "test_learners": int(len(targets)), "excluded_retakes": retakes,
               "train_registrations": int(len(train))}
        results.append(row)
    return results


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    header = [title for _, title, _ in columns]
    body = [[format(r[key], fmt) if fmt else str(r[key]) for key, _, fmt in columns] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, body)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnhub recommender evaluate",
        description="Offline evaluation of knowledge tracing (ASSISTments 2009) and course "
                    "ranking (OULAD).")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"folder holding assistments2009/ and oulad/ (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--only", choices=("tracing", "ranking"), help="run one benchmark only")
    parser.add_argument("--max-learners", type=int, default=None,
                        help="knowledge tracing on the first N train and N test learners (quick run)")
    parser.add_argument("--cutoff-day", type=float, default=520.0,
                        help="OULAD time split, days since 2013-01-01 (default 520)")
    parser.add_argument("-k", type=int, default=10, help="ranking cut-off (default 10)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"error: data directory {args.data_dir} does not exist", file=sys.stderr)
        return 2
    out: dict = {"data_dir": str(args.data_dir), "cpus": os.cpu_count()}
    if hasattr(os, "getloadavg"):
        out["load_average_at_start"] = os.getloadavg()[0]
    if args.only in (None, "tracing"):
        out["knowledge_tracing"] = evaluate_tracing(args.data_dir, args.max_learners)
    if args.only in (None, "ranking"):
        out["course_ranking"] = evaluate_ranking(args.data_dir, args.cutoff_day, args.k)
    if hasattr(os, "getloadavg"):
        out["load_average_at_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "load_average_at_start" in out:
        print(f"({out['cpus']} CPUs; 1-min load average {out['load_average_at_start']:.1f} at start, "
              f"{out['load_average_at_end']:.1f} at end — wall-clock seconds depend on it)\n")
    if "knowledge_tracing" in out:
        kt = out["knowledge_tracing"]
        print(f"Knowledge tracing — ASSISTments 2009 DKT split "
              f"({kt[0]['train_answers']:,} train / {kt[0]['test_answers']:,} test answers)")
        print(_table(kt, [("model", "model", ""), ("auc", "AUC", ".4f"), ("rmse", "RMSE", ".4f"),
                          ("fit_seconds", "fit s (wall)", ".1f"),
                          ("fit_cpu_seconds", "fit s (CPU)", ".1f")]))
        print()
    if "course_ranking" in out:
        cr = out["course_ranking"]
        k = args.k
        print(f"Course ranking — OULAD next module, cutoff day {args.cutoff_day:g} "
              f"({cr[0]['test_learners']} test learners, {cr[0]['excluded_retakes']} retakes excluded)")
        print(_table(cr, [("model", "model", ""), (f"ndcg@{k}", f"NDCG@{k}", ".4f"),
                          (f"recall@{k}", f"Recall@{k}", ".4f"), ("recall@1", "Recall@1", ".4f"),
                          ("mrr", "MRR", ".4f"), ("fit_seconds", "fit s (wall)", ".2f"),
                          ("fit_cpu_seconds", "fit s (CPU)", ".2f")]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
