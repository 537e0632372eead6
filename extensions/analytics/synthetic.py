"""Synthetic course activity: realistic-looking events for benchmarks, tests and demos.

Learners differ in diligence and skill; diligent ones keep coming, fetch, attempt, fail a few times
with typical errors, pass, submit and get graded; others fade out. Deterministic for a given seed.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

from learnhub.event_schemas import SCHEMA_VERSION, Verb

ERRORS = ["NameError", "TypeError", "IndexError", "AssertionError", "SyntaxError", "ZeroDivisionError"]


def course_events(course_id: str = "bench", learners: int = 1000, assignments: int = 10,
                  exercises_per_assignment: int = 5, days: int = 120, target: int | None = None,
                  seed: int = 1, start: datetime | None = None) -> Iterator[dict]:
    """Yield wire-format events (in time order per learner). ``target`` pads with activity heartbeats and
    notebook events to reach roughly that many events in total."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 5, tzinfo=timezone.utc)
    per_learner_extra = 0
    base_estimate = learners * (4 + assignments * (4 + exercises_per_assignment * 2.5))
    if target and target > base_estimate / 2:
        # Generous (drop-outs make fewer base events than estimated): callers cut at ``target``.
        per_learner_extra = int((target - base_estimate / 2) / learners) + 1
    counter = 0

    def event(actor, verb, object_type, object_id, time, result=None, assignment=None):
        nonlocal counter
        counter += 1
        context = {"course_id": course_id, "source": "synthetic"}
        if assignment:
            context["assignment_id"] = assignment
        out = {"id": f"{course_id}-{seed}-{counter}", "time": time.isoformat(), "actor": actor, "verb": verb.value,
               "object": {"type": object_type, "id": object_id}, "context": context,
               "schema_version": SCHEMA_VERSION}
        if result is not None:
            out["result"] = result
        return out

    for n in range(learners):
        actor = f"learner{n:05d}"
        diligence, skill = rng.random(), rng.random()
        t = start + timedelta(hours=rng.uniform(0, 72))
        yield event(actor, Verb.ENROLLED, "course", course_id, t, {"role": "learner"})
        quit_after = assignments if diligence > 0.3 else rng.randint(0, assignments)
        for a in range(assignments):
            due = start + timedelta(days=(a + 1) * days / (assignments + 1))
            if a >= quit_after:
                break
            assignment = f"a{a + 1:02d}"
            t = max(t, due - timedelta(days=rng.uniform(1, 10))) + timedelta(minutes=rng.uniform(1, 60))
            yield event(actor, Verb.FETCHED, "assignment", assignment, t, assignment=assignment)
            score = 0.0
            for e in range(exercises_per_assignment):
                exercise = f"{assignment}/ex{e + 1}"
                difficulty = (e + 1) / (exercises_per_assignment + 1)
                for attempt in range(1, 8):
                    t += timedelta(minutes=rng.uniform(1, 25))
                    passed = rng.random() < 0.35 + 0.6 * skill - 0.3 * difficulty + 0.1 * attempt
                    result = {"success": passed, "score": 1.0 if passed else 0.0, "max_score": 1.0, "attempt": attempt}
                    if not passed:
                        result["error_type"] = ERRORS[min(len(ERRORS) - 1, int(rng.expovariate(1.0)))]
                    yield event(actor, Verb.ATTEMPTED, "exercise", exercise, t, result, assignment)
                    if passed:
                        score += 1
                        break
                    if rng.random() > diligence + 0.3:
                        break
            t += timedelta(minutes=rng.uniform(1, 30))
            yield event(actor, Verb.SUBMITTED, "assignment", assignment, t, assignment=assignment)
            t += timedelta(seconds=rng.uniform(5, 120))
            yield event(actor, Verb.GRADED, "assignment", assignment, t,
                        {"score": score, "max_score": float(exercises_per_assignment),
                         "success": score >= exercises_per_assignment / 2, "duration": rng.uniform(2, 40)},
                        assignment)
        end = start + timedelta(days=days * (quit_after + 1) / (assignments + 1))
        for k in range(per_learner_extra):
            when = start + (end - start) * (k + 1) / (per_learner_extra + 1)
            if k % 3 == 0:
                yield event(actor, Verb.ACTIVE, "notebook", f"a{k % assignments + 1:02d}/work.ipynb", when,
                            {"duration": rng.uniform(30, 300)})
            elif k % 3 == 1:
                yield event(actor, Verb.EXECUTED, "cell", f"a{k % assignments + 1:02d}/work.ipynb#{k % 40}", when,
                            {"success": rng.random() > 0.2})
            else:
                yield event(actor, Verb.SAVED, "notebook", f"a{k % assignments + 1:02d}/work.ipynb", when)
