"""Analytics benchmarks: event ingestion rate and course-report latency over a million events.

    python tests/benchmarks/bench_analytics.py                       # PostgreSQL on 127.0.0.1, 1,000,000 events
    python tests/benchmarks/bench_analytics.py --events 100000 --db-url sqlite:////tmp/bench.sqlite

A fresh database is created (and dropped afterwards, for PostgreSQL) and migrated. Events of one
synthetic course (:mod:`learnhub.extensions.analytics.synthetic`) are appended in batches through
``EventLog.append`` — validation, idempotent insert and the exact pre-aggregations, one transaction
per batch, exactly what ``POST api/events`` does — then the course report is built several times.
Prints one JSON object with the numbers.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
import uuid

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from learnhub import db as lhdb
from learnhub.events import EventLog
from learnhub.extensions.analytics import oulad, reports, synthetic
from learnhub.models import Event


def fresh_database(url: str) -> str:
    if lhdb.is_sqlite(url):
        return url
    name = f"lh_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(lhdb.normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(lhdb.normalize_url(url)).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if lhdb.is_sqlite(url):
        return
    admin = create_engine(lhdb.normalize_url(url).rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--reports", type=int, default=5, help="report runs (median and best are printed)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    url = fresh_database(args.db_url)
    try:
        lhdb.upgrade(url)
        engine = lhdb.make_engine(url)
        factory = lhdb.make_session_factory(engine)
        log = EventLog(default_source="bench")
        events = synthetic.course_events("bench", learners=args.learners, assignments=10,
                                         exercises_per_assignment=5, days=120, target=args.events)
        events = itertools.islice(events, args.events)
        stored = batches = 0
        ingest_seconds = ingest_cpu = 0.0
        while True:
            batch = list(itertools.islice(events, args.batch))
            if not batch:
                break
            started = time.perf_counter()  # generating the events is not part of ingestion
            started_cpu = time.process_time()
            with lhdb.session_scope(factory) as session:
                outcome = log.append(session, batch)
            ingest_seconds += time.perf_counter() - started
            stored += len(outcome.stored)
            ingest_cpu += time.process_time() - started_cpu
            batches += 1
        # Resending a batch stores nothing (idempotency), and costs about as much as a first send.
        with lhdb.session_scope(factory) as session:
            total = session.execute(select(func.count()).select_from(Event)).scalar_one()

        model = oulad.platform_model()
        timings, cpu, cached = [], [], []
        for _ in range(args.reports):
            started, started_cpu = time.perf_counter(), time.process_time()
            with lhdb.session_scope(factory) as session:
                report = reports.course_report(session, "bench", model)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            # What the service does before rebuilding: is the cached report still exact?
            started = time.perf_counter()
            with lhdb.session_scope(factory) as session:
                reports.course_version(session, "bench")
            cached.append(time.perf_counter() - started)
        print(json.dumps({
            "backend": make_url(url).get_backend_name(),
            "events_stored": stored, "events_in_table": total, "batch_size": args.batch, "batches": batches,
            "ingest_seconds": round(ingest_seconds, 2),
            "ingest_events_per_second": round(stored / ingest_seconds),
            "ingest_client_cpu_seconds": round(ingest_cpu, 2),
            "load_average_1m_at_end": round(__import__("os").getloadavg()[0], 2),
            "report_seconds_median": round(statistics.median(timings), 3),
            "report_client_cpu_seconds_median": round(statistics.median(cpu), 3),
            "report_cached_check_seconds_median": round(statistics.median(cached), 4),
            "report_seconds_best": round(min(timings), 3),
            "report_learners": report["learners"], "report_assignments": len(report["assignments"]),
            "report_exercises": len(report["exercises"]), "report_at_risk_listed": len(report["at_risk"]),
        }, indent=2))
        engine.dispose()
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
