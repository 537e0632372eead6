"""The recommender service on a real platform (``learnhub up`` with the demo course; the courses,
recommender and notifications services): permissions, explained recommendations that change after a
learner passes or fails exercises, due dates and profiles read from the courses service over HTTP,
the ``recommended`` event and the notification it becomes, mastery for staff, refits.

People enroll through the courses service (which mirrors roles into hub groups) and set their
profile there; graded events are appended to the event log exactly as the feedback service writes
them (no grader runs here: the feedback service's own tests cover grading).
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from hubtools import free_port, module_platform
from learnhub import db as lhdb
from learnhub.event_schemas import Verb
from learnhub.events import to_wire, validate_event
from learnhub.hubapi import ServiceAPI
from learnhub.extensions.recommender.sources import CoursesServiceProfiles, CoursesServiceSchedule
from learnhub.models import Event
from learnhub.timeutil import parse_iso
from rec_events import COURSE, add, graded, minutes_ago

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: runs on PostgreSQL too

LEARNERS = ("lena", "leo", "nina", "pia")
FOLDER_DUE = "2026-09-14T23:59:00+00:00"  # 01-basics in courses/intro-python/course.yaml


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    env = {"LEARNHUB_RECOMMENDER_REFIT_SECONDS": "2",
           # an unchanged top step is never announced twice; no hourly limit, so that the
           # test sees that rule alone (the limit has its own test in test_announcements.py)
           "LEARNHUB_RECOMMENDER_ANNOUNCE_INTERVAL_SECONDS": "0"}
    for hub in module_platform(tmp_path_factory, "recommender", demo=True, extra_env=env,
                               services=["courses", "recommender", "notifications"]):
        tokens = {"admin": hub.admin_token}
        for name in (*LEARNERS, "ian", "tara", "otto"):
            assert hub.hub_api("POST", f"/users/{name}").status_code == 201
            tokens[name] = hub.user_token(name)
        engine = lhdb.make_engine(hub.db_url)
        platform = {"hub": hub, "tokens": tokens, "sessions": lhdb.make_session_factory(engine)}
        for name in ("lena", "leo"):
            enrolled = call(platform, name, "courses", "POST", f"courses/{COURSE}/enrollments", json={})
            assert enrolled.status_code == 201, enrolled.text
        for name, role in (("ian", "instructor"), ("tara", "ta")):
            added = call(platform, "admin", "courses", "POST", f"courses/{COURSE}/enrollments",
                         json={"user": name, "role": role})
            assert added.status_code == 201 and added.json()["mirrored"], added.text
        yield platform
        engine.dispose()


def call(platform, who, service, method, path, **kwargs):
    token = platform["tokens"][who] if who else None
    return platform["hub"].api(method, f"/services/{service}/api/{path}", token=token, **kwargs)


def get(platform, who, path, **params):
    return call(platform, who, "recommender", "GET", path, params=params)


def wait_for(what, probe, timeout=90):
    """``probe()`` until it returns something truthy (what the background loops produce)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.5)


def recommended_events(platform, learner):
    with lhdb.session_scope(platform["sessions"]) as session:
        events = session.scalars(select(Event).where(Event.actor == learner, Event.verb == Verb.RECOMMENDED)
                                 .order_by(Event.time)).all()
        session.expunge_all()
        return events


def scheduled_due(platform, assignment):
    """The due date the courses service holds (the demo course's, moved to a week after loading)."""
    page = call(platform, "admin", "courses", "GET", "schedule", params={"course": COURSE}).json()
    return parse_iso({i["assignment_id"]: i["due"] for i in page["items"]}[assignment])


def test_auth_and_bad_input(platform):
    assert get(platform, None, "recommendations").status_code == 401
    assert get(platform, None, "mastery").status_code == 401
    assert get(platform, "lena", "recommendations", course="no-such-course").status_code == 404
    assert get(platform, "lena", "mastery", course="no-such-course").status_code == 404
    bad = get(platform, "lena", "recommendations", kind="everything")
    assert bad.status_code == 400 and "kind" in bad.json()["error"]["message"]
    for limit in ("0", "101", "ten"):
        refused = get(platform, "lena", "recommendations", limit=limit)
        assert refused.status_code == 400 and refused.json()["error"]["details"] == {"parameter": "limit"}


def test_learners_see_only_their_own_data(platform):
    for path in ("recommendations", "mastery"):
        assert get(platform, "lena", path, user="leo").status_code == 403
        assert get(platform, "lena", path, user="leo", course=COURSE).status_code == 403
        assert get(platform, "otto", path, user="lena", course=COURSE).status_code == 403
    # not enrolled: no next steps inside the course, but course recommendations are fine
    refused = get(platform, "otto", "recommendations", course=COURSE, kind="exercise")
    assert refused.status_code == 403 and "Enroll" in refused.json()["error"]["message"]
    cold = get(platform, "otto", "recommendations", kind="course")
    assert cold.status_code == 200
    [item] = cold.json()["items"]
    assert item["item"] == COURSE and item["title"] == "Introduction to Python"
    # before the first refit that saw the enrollments the catalogue is shown; after, popularity
    expected = {"starter": "a course to start with", "popular": "popular with new learners"}
    assert item["reason_code"] in expected and item["reason"] == expected[item["reason_code"]]
    # enrolled learners are not recommended the course they are in
    mine = get(platform, "lena", "recommendations", kind="course")
    assert mine.status_code == 200 and mine.json()["items"] == []


def test_explained_recommendations_with_the_courses_service_schedule(platform):
    first = get(platform, "lena", "recommendations", course=COURSE, kind="exercise", limit=20)
    assert first.status_code == 200, first.text
    items = first.json()["items"]
    top = items[0]
    assert top["item"] == "01-basics/variables" and top["title"] == "Naming values"
    assert top["reason_code"] == "not_started" and top["reason_params"]["skill"] == "variables-and-types"
    # the due date is the courses service's (the demo's schedule moved to a week after loading),
    # not the course folder's, and the reason counts the days to it
    due = scheduled_due(platform, "01-basics")
    assert parse_iso(top["due"].replace("+00:00", "Z")) == due and top["due"] != FOLDER_DUE
    days = top["reason_params"]["due_in_days"]
    assert 5 <= days <= 8 and parse_iso(top["reason_params"]["due"].replace("+00:00", "Z")) == due
    assert top["reason"] == (f"you have not started Variables and types yet; this exercise introduces it; "
                             f"due in {days} days")
    later = items[1]
    assert later["ready"] is False and later["reason_code"] == "prerequisite_first"
    assert later["reason"].startswith("first work on Variables and types (not started yet); this exercise needs it")

    add(platform["sessions"], graded("lena", "01-basics", {"variables": True, "shout": False},
                                     when=minutes_ago(1)))
    after = get(platform, "lena", "recommendations", course=COURSE, kind="exercise", limit=20).json()["items"]
    assert "01-basics/variables" not in [it["item"] for it in after]  # passed: never recommended again
    assert after[0]["item"] == "01-basics/shout" and after[0]["reason_code"] == "practice"
    assert after[0]["reason_params"]["skill"] == "strings"
    assert after[0]["reason_params"]["mastery"] == after[0]["mastery"]
    assert after[0]["reason"].startswith("you are at 25% on Working with strings; this exercise practises it")
    mastery = {it["skill"]: it for it in get(platform, "lena", "mastery", course=COURSE).json()["items"]}
    assert mastery["strings"]["level"] == "attempted" and mastery["variables-and-types"]["attempts"] == 1
    # enrolled courses are used when no course is given
    default = get(platform, "lena", "recommendations", kind="assignment").json()
    assert default["items"][0]["item"] == "01-basics" and default["items"][0]["course"] == COURSE
    assert "this assignment" in default["items"][0]["reason"]


def test_a_new_top_step_is_announced_once_and_notified(platform):
    add(platform["sessions"], graded("leo", "01-basics", {"variables": True, "shout": False},
                                     when=minutes_ago(1)))
    [event] = wait_for("recommended event", lambda: recommended_events(platform, "leo"))
    shown = get(platform, "leo", "recommendations", course=COURSE, kind="exercise", limit=1).json()["items"][0]
    assert (event.source, event.course_id, event.object_type) == ("recommender", COURSE, "recommendation")
    assert event.result["item"] == shown["item"] == "01-basics/shout"
    assert event.result["reason"] == {"code": shown["reason_code"], "params": event.result["reason"]["params"]}
    assert event.result["reason"]["params"]["skill"] == "strings"
    assert event.result["reason_text"].startswith("you are at 25% on Working with strings")
    assert validate_event(to_wire(event)) == []

    notification = wait_for("recommendations notification", lambda: [
        n for n in call(platform, "leo", "notifications", "GET", "notifications").json()["items"]
        if n["type"] == "recommendations"])
    assert [(n["title"], n["body"], n["course_id"]) for n in notification] == [
        ("Recommended next: Shouting", event.result["reason_text"], COURSE)]

    # graded again, the same top step: nothing new (the service looks at every grade; wait until it
    # has seen this one, by a grade of someone else after it that does get announced)
    add(platform["sessions"], graded("leo", "01-basics", {"variables": True}, when=minutes_ago(0.5)))
    add(platform["sessions"], graded("nina", "01-basics", {"variables": False}, when=datetime.now(timezone.utc)))
    wait_for("nina's recommended event", lambda: recommended_events(platform, "nina"))
    assert get(platform, "leo", "recommendations", course=COURSE, kind="exercise",
               limit=1).json()["items"][0]["item"] == "01-basics/shout"
    assert len(recommended_events(platform, "leo")) == 1


def test_profiles_set_at_the_courses_service_reach_course_recommendations(platform):
    profile = {"goals": "automate my spreadsheets", "goal_skills": ["loops"], "preferred_topics": ["python"],
               "level": "beginner"}
    saved = call(platform, "pia", "courses", "PUT", "profile", json=profile)
    assert saved.status_code == 200, saved.text
    [item] = get(platform, "pia", "recommendations", kind="course").json()["items"]
    assert item["item"] == COURSE
    # the goal skill matches one of the course's skills, the preferred topic one of its tags
    assert item["reason_code"] == "goal_match" and item["reason_params"]["matched"] == ["loops", "python"]
    assert item["reason"] == "matches your goal: loops, python"


def test_the_http_sources_against_the_courses_service(platform, caplog):
    hub = platform["hub"]
    services = f"{hub.url}/services/"
    reader = ServiceAPI("courses", platform["tokens"]["admin"], services)  # admins may read every profile
    profiles = CoursesServiceProfiles(reader, ttl=0)
    assert call(platform, "nina", "courses", "PUT", "profile", json={"goals": "data", "level": "intermediate",
                                                                     "preferred_topics": ["pandas"]}).ok
    assert profiles.profile("nina") == {"goals": "data pandas", "goal_skills": [], "level": "intermediate"}
    assert profiles.profile("otto") is None  # nothing set
    schedule = CoursesServiceSchedule(reader, ttl=0).due_dates(COURSE)
    assert set(schedule) == {"01-basics", "02-control-flow", "03-functions-and-data"}
    assert schedule["01-basics"] == scheduled_due(platform, "01-basics")
    assert CoursesServiceSchedule(reader).due_dates("no-such-course") == {}

    # a token that may not read them (a learner's), and a courses service that does not answer:
    # no profile, no schedule, each outage logged once
    # caplog's handler on the logger itself: a service's log set-up in this process stops propagation
    logger = logging.getLogger("learnhub.recommender.sources")
    logger.addHandler(caplog.handler)
    propagate, logger.propagate = logger.propagate, False
    caplog.set_level(logging.WARNING, logger=logger.name)
    try:
        refused = CoursesServiceProfiles(ServiceAPI("courses", platform["tokens"]["lena"], services),
                                         retry_seconds=0)
        assert refused.profile("nina") is None and refused.profile("pia") is None
        down = CoursesServiceSchedule(ServiceAPI("courses", "t", f"http://127.0.0.1:{free_port()}/services/",
                                                 timeout=2), retry_seconds=0)
        assert down.due_dates(COURSE) == {} and down.due_dates(COURSE) == {}
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagate
    warnings = [r.getMessage() for r in caplog.records if r.name == logger.name and r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "learner profiles" in warnings[0] and "403" in warnings[0]
    assert "schedule" in warnings[1] and "not answering" in warnings[1]


def test_staff_see_their_learners(platform):
    for staff in ("ian", "tara", "admin"):
        response = get(platform, staff, "recommendations", user="leo", course=COURSE, kind="exercise")
        assert response.status_code == 200, response.text
        assert response.json()["user"] == "leo" and response.json()["items"]
    assert get(platform, "ian", "recommendations", user="otto", course=COURSE).status_code == 403
    assert get(platform, "ian", "mastery", user="lena", course=COURSE).json()["user"] == "lena"
    whole = get(platform, "ian", "mastery", course=COURSE)
    assert whole.status_code == 200, whole.text
    assert [row["user"] for row in whole.json()["items"]] == ["lena", "leo"]
    assert whole.json()["next"] is None
    page = get(platform, "tara", "mastery", course=COURSE, limit=1).json()
    assert [row["user"] for row in page["items"]] == ["lena"] and page["next"] == "1"
    # a learner asking without user= gets their own mastery, not the class
    assert get(platform, "leo", "mastery", course=COURSE).json()["user"] == "leo"


def test_refits_on_schedule_and_on_request(platform):
    model = get(platform, "lena", "model")
    assert model.status_code == 200
    version = model.json()["version"]
    wait_for("scheduled refit", lambda: get(platform, "lena", "model").json()["version"] > version, timeout=60)
    hub = platform["hub"]
    assert hub.api("POST", "/services/recommender/api/refits", token=platform["tokens"]["lena"]).status_code == 403
    refit = hub.api("POST", "/services/recommender/api/refits", token=platform["tokens"]["admin"])
    assert refit.status_code == 201 and refit.json()["version"] > version
    assert refit.json()["answers"] >= 2  # at least lena's and leo's graded tests


def test_a_new_enrollment_counts_at_once(platform):
    """The hub's user model the service caches (60 s) predates the enrollment; the answer must not."""
    before = get(platform, "otto", "recommendations", kind="exercise")
    assert before.status_code == 200 and before.json()["items"] == []  # in no course yet
    assert call(platform, "otto", "courses", "POST", f"courses/{COURSE}/enrollments", json={}).status_code == 201
    after = get(platform, "otto", "recommendations", kind="exercise")
    assert after.status_code == 200 and after.json()["items"], after.text
    assert all(item["course"] == COURSE and item["reason"] for item in after.json()["items"])
