"""``learnhub recommender evaluate`` through the learnhub command line."""
import json
import subprocess
import sys


def test_learnhub_recommender_evaluate_prints_every_baseline():
    run = subprocess.run(
        [sys.executable, "-m", "learnhub", "recommender", "evaluate", "--only", "tracing",
         "--max-learners", "300", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    text = run.stdout
    payload = json.loads(text[text.index("{"):])
    blob = json.dumps(payload)
    for model in ("per-skill rate", "BKT", "PFA", "KnowledgeTracer"):
        assert model in blob


def test_unknown_subcommand_is_an_error():
    run = subprocess.run([sys.executable, "-m", "learnhub", "recommender", "train"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "unknown command" in run.stderr
