"""Latency of one ``recommendations`` call with 10,000 learners and 200 courses in the database.

    python tests/benchmarks/bench_recommender_service.py [--learners 10000] [--courses 200]
        [--calls 1000] [--db-url postgresql://postgres@127.0.0.1:5432/test] [--json]

Builds 200 synthetic courses (8 skills with prerequisites, 3 assignments x 5 exercises each) and a
synthetic event log in a fresh database: every learner enrolls in 1-3 courses and has graded
submissions in them (``graded`` events shaped exactly as the feedback service writes them). Then:

1. refits the engine on the whole log (knowledge tracer + course recommender), timed;
2. in-process through the engine: ``--calls`` ``recommend`` calls, each for a *different* learner
   (every call reads that learner's graded events from the database; the mastery comes from the
   refit's snapshot), for kind=exercise (with course=), kind=assignment, kind=course and mastery;
   then unknown learners (cold start), and learners with a grade added after the refit (their
   first call runs the knowledge tracer on their history);
3. the announcements of new top steps (``recommended`` events) for every learner graded in step 2,
   as the service's background loop makes them, timed;
4. HTTP level: the real tornado application of ``RecommenderService`` on a local port, with the
   hub's token check replaced by a stub (HubAuth caches a token's user for 60 s, so in steady
   state that check is a dictionary look-up; the hub itself is not in this number), ``GET
   api/recommendations?course=...&kind=exercise`` for ``--calls`` different learners (with the
   reasons rendered as English, as the service answers).

Profiles and due dates come from no other service here (the engine's default sources: none), so
no courses service is needed and none is in the numbers.

Prints p50/p95/p99 in ms; the target is p99 < 50 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]

from learnhub import db as lhdb  # noqa: E402
from learnhub.course_content import Assignment, Course, Exercise, Skill  # noqa: E402
from learnhub.extensions.recommender.announcements import RecommendationAnnouncer  # noqa: E402
from learnhub.extensions.recommender.engine import CourseLibrary, RecommenderEngine  # noqa: E402
from learnhub.extensions.recommender.reasons import ReasonRenderer  # noqa: E402
from learnhub.models import Event  # noqa: E402

TOPICS = ["python", "data", "statistics", "web", "sql", "ml", "visualisation", "testing", "git", "cloud",
          "security", "algorithms", "pandas", "numpy", "networks", "rust", "go", "javascript", "design", "ethics"]
LEVELS = ("beginner", "intermediate", "advanced")


def synthetic_courses(n: int, rng: random.Random) -> list[Course]:
    courses = []
    for c in range(n):
        cid = f"course-{c:03d}"
        skills = [Skill(id=f"{cid}-s{k}", title=f"Skill {k} of {cid}",
                        prerequisites=(f"{cid}-s{k - 1}",) if k else ()) for k in range(8)]
        assignments = []
        for a in range(3):
            exercises = tuple(Exercise(grade_id=f"ex{a}{e}", title=f"Exercise {a}.{e}",
                                       skills=tuple(sorted({skills[min(7, a * 3 + e // 2)].id,
                                                            skills[min(7, a * 3 + e % 3)].id})),
                                       difficulty=1 + (e % 3), points=1.0) for e in range(5))
            assignments.append(Assignment(id=f"a{a}", title=f"Assignment {a} of {cid}",
                                          due=datetime(2026, 12, 1 + a * 7, tzinfo=timezone.utc),
                                          hard_deadline=False, max_attempts=None, difficulty=a + 1, limits=None,
                                          exercises=exercises, source_dir=Path("/nonexistent"), notebooks=()))
        topics = rng.sample(TOPICS, 3)
        courses.append(Course(id=cid, title=f"{topics[0].title()} and {topics[1]} {c}",
                              description=f"A course about {' '.join(topics)}.", level=LEVELS[c % 3],
                              tags=tuple(topics), skills=tuple(skills),
                              prerequisites=(f"course-{c - 1:03d}",) if c % 10 == 9 else (),
                              open_enrollment=True, assignments=tuple(assignments), path=Path("/nonexistent")))
    return courses


def synthetic_events(courses, n_learners: int, rng: random.Random):
    """Yield event rows (dicts for a bulk insert): enrollments and graded submissions."""
    start = datetime(2026, 9, 1, tzinfo=timezone.utc)
    weights = [1.0 / (1 + i) ** 0.8 for i in range(len(courses))]  # a few popular courses
    for i in range(n_learners):
        name = f"learner{i:05d}"
        ability = rng.random()
        t = start + timedelta(minutes=i)
        for course in set(rng.choices(courses, weights, k=rng.randint(1, 3))):
            t += timedelta(minutes=5)
            yield dict(id=uuid.uuid4().hex, time=t, actor=name, verb="enrolled", object_type="course",
                       object_id=course.id, course_id=course.id, result=None,
                       context={"course_id": course.id}, source="courses", schema_version=1, stored_at=t)
            for assignment in course.assignments[:rng.randint(0, 3)]:
                for _attempt in range(rng.randint(1, 2)):
                    t += timedelta(minutes=20)
                    tests = [{"grade_id": ex.grade_id,
                              "passed": rng.random() < 0.25 + 0.6 * ability - 0.08 * ex.difficulty + 0.1,
                              "points": 1.0, "max_points": 1.0, "error_type": None}
                             for ex in assignment.exercises]
                    yield dict(id=f"graded:{uuid.uuid4()}", time=t, actor=name, verb="graded",
                               object_type="submission", object_id=uuid.uuid4().hex, course_id=course.id,
                               result={"score": float(sum(x["passed"] for x in tests)),
                                       "max_score": float(len(tests)), "success": all(x["passed"] for x in tests),
                                       "tests": tests},
                               context={"assignment_id": assignment.id, "mode": "grade"},
                               source="feedback", schema_version=1, stored_at=t)


def fresh_database(url: str | None, folder: Path) -> tuple[str, callable]:
    if not url:
        return f"sqlite:///{folder / 'bench.sqlite'}", lambda: None
    from sqlalchemy import create_engine, text

    name = f"lh_bench_rec_{uuid.uuid4().hex[:8]}"
    admin = create_engine(lhdb.normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(lhdb.normalize_url(url)).set(database=name).render_as_string(hide_password=False), drop


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values, cpu=None):
    out = {"n": len(values), "p50_ms": round(pct(values, 50), 2), "p95_ms": round(pct(values, 95), 2),
           "p99_ms": round(pct(values, 99), 2), "mean_ms": round(statistics.fmean(values), 2)}
    if cpu:
        out["cpu_p50_ms"], out["cpu_p99_ms"] = round(pct(cpu, 50), 2), round(pct(cpu, 99), 2)
    return out


def timed(fn, args_list):
    """Wall-clock and CPU (this process) milliseconds per call."""
    wall, cpu = [], []
    for args in args_list:
        c0, t0 = time.process_time(), time.perf_counter()
        fn(*args)
        wall.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
    return summary(wall, cpu)


class StubHubAuth:
    """Stands in for HubOAuth: every token is the user it names (``token <name>``), in the
    course groups the benchmark gives it; the service's access scope is granted."""

    access_scopes = {"access:services!service=recommender"}

    def __init__(self, groups: dict):
        self.groups = groups

    async def get_user(self, handler, sync=False):
        header = handler.request.headers.get("Authorization", "")
        name = header.split(" ", 1)[1] if " " in header else None
        if not name:
            return None
        return {"name": name, "kind": "user", "admin": False, "groups": self.groups.get(name, []),
                "scopes": sorted(self.access_scopes)}

    def check_scopes(self, required, model):
        return set(required) & set(model.get("scopes", []))


async def http_latencies(service, learners, enrolled, calls):
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    groups = {name: [f"course-{c}-learners" for c in enrolled[name]] for name in learners}
    service.tornado_settings = {"hub_auth": StubHubAuth(groups), "log_function": lambda handler: None}
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(service.make_app())
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}{service.prefix.rstrip('/')}"
    client = AsyncHTTPClient()
    out = []
    for name in learners[:calls]:
        course = enrolled[name][0]
        t0 = time.perf_counter()
        response = await client.fetch(f"{base}/api/recommendations?course={course}&kind=exercise&limit=10",
                                      headers={"Authorization": f"token {name}"})
        out.append(1000 * (time.perf_counter() - t0))
        assert response.code == 200 and "items" in json.loads(response.body)
    server.stop()
    return out


def add_grades(engine, courses, enrolled, names):
    """A new graded submission (all passed) for each of ``names``, now."""
    by_id = {c.id: c for c in courses}
    now = datetime.now(timezone.utc)
    rows = []
    for n in names:
        c = by_id[enrolled[n][0]]
        a = c.assignments[0]
        rows.append(dict(id=f"graded:{uuid.uuid4()}", time=now, actor=n, verb="graded",
                         object_type="submission", object_id=uuid.uuid4().hex, course_id=c.id,
                         result={"tests": [{"grade_id": ex.grade_id, "passed": True} for ex in a.exercises]},
                         context={"assignment_id": a.id, "mode": "grade"}, source="feedback",
                         schema_version=1, stored_at=now))
    with engine.begin() as conn:
        conn.execute(insert(Event), rows)


def progress(name, value):
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {value}", file=sys.stderr, flush=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=10000)
    parser.add_argument("--courses", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--db-url", default=None, help="a PostgreSQL server URL (a fresh database is made); "
                                                       "default: a SQLite file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="bench-rec-"))
    url, drop = fresh_database(args.db_url, folder)
    report = {"learners": args.learners, "courses": args.courses, "backend": make_url(url).get_backend_name()}
    try:
        lhdb.upgrade(url)
        engine = lhdb.make_engine(url)
        sessions = lhdb.make_session_factory(engine)
        courses = synthetic_courses(args.courses, rng)
        t0 = time.perf_counter()
        enrolled: dict[str, list[str]] = {}
        batch, n_events = [], 0
        with engine.begin() as conn:
            for row in synthetic_events(courses, args.learners, rng):
                if row["verb"] == "enrolled":
                    enrolled.setdefault(row["actor"], []).append(row["course_id"])
                batch.append(row)
                if len(batch) >= 5000:
                    conn.execute(insert(Event), batch)
                    n_events += len(batch)
                    batch = []
            if batch:
                conn.execute(insert(Event), batch)
                n_events += len(batch)
        report["events"] = n_events
        report["load_seconds"] = round(time.perf_counter() - t0, 1)
        progress("loaded events", n_events)

        library = CourseLibrary(courses=courses)
        rec = RecommenderEngine(sessions, library)
        models = rec.refit(reload_library=False)
        report["refit"] = {"seconds": models.fit_seconds, "tracer": models.tracer_kind, "answers": models.n_answers,
                           "course_interactions": models.n_interactions}
        progress("refit", report["refit"])

        learners = sorted(enrolled)
        rng.shuffle(learners)
        sample = learners[:args.calls]
        rec.recommend(sample[0], "exercise", course=enrolled[sample[0]][0])  # warm-up
        runs = {
            "engine exercise (course=)": (
                lambda n: rec.recommend(n, "exercise", course=enrolled[n][0], courses=enrolled[n], limit=10)),
            "engine assignment (all enrolled courses)": (
                lambda n: rec.recommend(n, "assignment", courses=enrolled[n], limit=10)),
            "engine course": (lambda n: rec.recommend(n, "course", courses=enrolled[n], limit=10)),
            "engine mastery (course=)": (lambda n: rec.mastery(n, enrolled[n][0])),
        }
        report["latency"] = {}
        for name, fn in runs.items():
            report["latency"][name] = timed(fn, [(n,) for n in sample])
            progress(name, report["latency"][name])
        progress("calls", "cold start and new grades next")
        cold_users = learners[args.calls:2 * args.calls] or sample
        report["latency"]["engine exercise, unknown learner (cold start)"] = timed(
            lambda n: rec.recommend(f"nobody-{n}", "exercise", course=courses[0].id), [(n,) for n in cold_users])
        # a new grade since the refit: that learner's mastery is recomputed by the tracer on the request
        fresh = cold_users
        add_grades(engine, courses, enrolled, fresh)
        report["latency"]["engine exercise, first call after a new grade (tracer on request)"] = timed(
            lambda n: rec.recommend(n, "exercise", course=enrolled[n][0], courses=enrolled[n], limit=10),
            [(n,) for n in fresh])

        # the same after the service's background update (refresh_recent) has seen the new grades
        updated = learners[2 * args.calls:3 * args.calls] or sample
        add_grades(engine, courses, enrolled, updated)
        t0 = time.perf_counter()
        changed = rec.refresh_recent()
        report["refresh_recent"] = {"learners": changed, "seconds": round(time.perf_counter() - t0, 2)}
        progress("refresh_recent", report["refresh_recent"])
        report["latency"]["engine exercise, after a new grade and the background update"] = timed(
            lambda n: rec.recommend(n, "exercise", course=enrolled[n][0], courses=enrolled[n], limit=10),
            [(n,) for n in updated])

        # what the background loop does next: a recommended event for each learner whose top step changed
        announcer = RecommendationAnnouncer(sessions, rec, ReasonRenderer(library), interval=0, settle_seconds=0)
        t0, announced, graded_read = time.perf_counter(), 0, 0
        while True:
            announced += announcer.run_once()
            graded_read += announcer.last_read
            if not announcer.last_read:
                break
        seconds = time.perf_counter() - t0
        report["announce"] = {"graded_events": graded_read, "recommended_events": announced,
                              "seconds": round(seconds, 2),
                              "ms_per_graded_event": round(1000 * seconds / max(1, graded_read), 2)}
        progress("announce", report["announce"])

        from learnhub.extensions.recommender.app import RecommenderService

        service = RecommenderService(db_url=url, api_token="unused", hub_api_url="http://127.0.0.1:9/hub/api",
                                     course_roots=[])
        service.initialize([])
        service.library = library
        service.reasons = ReasonRenderer(library)
        service.rec_engine = rec
        http_users = learners[-args.calls:]
        report["latency"]["HTTP GET api/recommendations?kind=exercise (stub auth)"] = summary(
            asyncio.run(http_latencies(service, http_users, enrolled, args.calls)))
        service.engine.dispose()
        engine.dispose()
    finally:
        drop()
    import os

    report["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['learners']} learners, {report['courses']} courses, {report['events']} events "
              f"({report['backend']}; loaded in {report['load_seconds']} s); refit {report['refit']}")
        print(f"refresh_recent {report['refresh_recent']}; announcements {report['announce']}")
        print(f"load average at the end: {report['loadavg']}")
        print("| call | n | p50 ms | p95 ms | p99 ms | mean ms | CPU p50 ms | CPU p99 ms |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, s in report["latency"].items():
            print(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['mean_ms']} | "
                  f"{s.get('cpu_p50_ms', '')} | {s.get('cpu_p99_ms', '')} |")
        ok = all(s["p99_ms"] < 50 for s in report["latency"].values())
        print("target p99 < 50 ms:", "met" if ok else "NOT met")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
