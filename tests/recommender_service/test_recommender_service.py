"""The recommender service through a real hub: permissions, explained recommendations that
change after a learner passes or fails exercises, mastery for staff, refits.

Course membership is set directly as hub groups (what the courses service mirrors enrollments
into); graded events are inserted into the event log exactly as the feedback service writes them.
"""
from __future__ import annotations

import time

import pytest

from hubtools import LearnhubProcess
from learnhub import db as lhdb
from rec_events import COURSE, add, graded, minutes_ago

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: runs on PostgreSQL too


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    from dbtools import create_database, drop_database

    folder = tmp_path_factory.mktemp("recommender")
    db_url, hub_db_url = create_database(folder, "learnhub"), create_database(folder, "hub")
    hub = LearnhubProcess(folder / "data", db_url, hub_db_url, extra_env={
        "LEARNHUB_GRADER_WORKERS": "0", "LEARNHUB_RECOMMENDER_REFIT_SECONDS": "2"}).start()
    tokens = {}
    for name in ("lena", "leo", "ian", "tara", "otto"):
        assert hub.hub_api("POST", f"/users/{name}").status_code in (201, 409)
        tokens[name] = hub.user_token(name)
    tokens["admin"] = hub.admin_token
    for group, members in ((f"course-{COURSE}-learners", ["lena", "leo"]),
                           (f"course-{COURSE}-instructors", ["ian"]), (f"course-{COURSE}-tas", ["tara"])):
        hub.hub_api("POST", f"/groups/{group}")
        assert hub.hub_api("POST", f"/groups/{group}/users", json={"users": members}).ok
    engine = lhdb.make_engine(db_url)
    yield {"hub": hub, "tokens": tokens, "sessions": lhdb.make_session_factory(engine)}
    engine.dispose()
    assert hub.stop() == 0
    drop_database(db_url)
    drop_database(hub_db_url)


def get(platform, who, path, **params):
    token = platform["tokens"][who] if who else None
    return platform["hub"].api("GET", f"/services/recommender/api/{path}", token=token, params=params)


def test_auth_and_bad_input(platform):
    assert get(platform, None, "recommendations").status_code == 401
    assert get(platform, "lena", "recommendations", course="no-such-course").status_code == 404
    assert get(platform, "lena", "mastery", course="no-such-course").status_code == 404
    bad = get(platform, "lena", "recommendations", kind="everything")
    assert bad.status_code == 400 and "kind" in bad.json()["error"]["message"]
    assert get(platform, "lena", "recommendations", limit="0").status_code == 400


def test_learners_see_only_their_own_data(platform):
    for path in ("recommendations", "mastery"):
        assert get(platform, "lena", path, user="leo").status_code == 403
        assert get(platform, "lena", path, user="leo", course=COURSE).status_code == 403
        assert get(platform, "otto", path, user="lena", course=COURSE).status_code == 403
    # not enrolled: no next steps inside the course, but course recommendations are fine
    assert get(platform, "otto", "recommendations", course=COURSE, kind="exercise").status_code == 403
    cold = get(platform, "otto", "recommendations", kind="course")
    assert cold.status_code == 200
    assert [it["item"] for it in cold.json()["items"]] == [COURSE] and cold.json()["items"][0]["reason"]
    # enrolled learners are not recommended the course they are in
    assert get(platform, "lena", "recommendations", kind="course").json()["items"] == []


def test_explained_recommendations_change_after_pass_and_fail(platform):
    first = get(platform, "lena", "recommendations", course=COURSE, kind="exercise", limit=20)
    assert first.status_code == 200, first.text
    items = first.json()["items"]
    assert items[0]["item"] == "01-basics/variables"
    assert all(it["reason"] and it["title"] and "score" in it for it in items)
    add(platform["sessions"], graded("lena", "01-basics", {"variables": True, "shout": False},
                                     when=minutes_ago(1)))
    after = get(platform, "lena", "recommendations", course=COURSE, kind="exercise", limit=20).json()["items"]
    assert "01-basics/variables" not in [it["item"] for it in after]
    assert after[0]["skill"] == "strings" and "strings" in after[0]["reason"]
    mastery = {it["skill"]: it for it in get(platform, "lena", "mastery", course=COURSE).json()["items"]}
    assert mastery["strings"]["level"] == "attempted" and mastery["variables-and-types"]["attempts"] == 1
    # enrolled courses are used when no course is given
    default = get(platform, "lena", "recommendations", kind="assignment").json()
    assert default["items"][0]["item"] == "01-basics" and default["items"][0]["course"] == COURSE


def test_staff_see_their_learners(platform):
    for staff in ("ian", "tara", "admin"):
        response = get(platform, staff, "recommendations", user="leo", course=COURSE, kind="exercise")
        assert response.status_code == 200, response.text
        assert response.json()["user"] == "leo"
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
    assert get(platform, "lena", "model").status_code == 200
    deadline = time.monotonic() + 30
    version = get(platform, "lena", "model").json()["version"]
    while get(platform, "lena", "model").json()["version"] <= version:  # refit every 2 s
        assert time.monotonic() < deadline, "no scheduled refit"
        time.sleep(0.5)
    hub = platform["hub"]
    assert hub.api("POST", "/services/recommender/api/refits", token=platform["tokens"]["lena"]).status_code == 403
    refit = hub.api("POST", "/services/recommender/api/refits", token=platform["tokens"]["admin"])
    assert refit.status_code == 201 and refit.json()["answers"] >= 2


def test_a_new_enrollment_counts_at_once(platform):
    """The hub's user model the service caches (60 s) predates the enrollment; the answer must not."""
    hub = platform["hub"]
    assert hub.hub_api("POST", "/users/nina").status_code in (201, 409)
    platform["tokens"]["nina"] = hub.user_token("nina")
    before = get(platform, "nina", "recommendations", kind="exercise")
    assert before.status_code == 200 and before.json()["items"] == []  # in no course yet
    assert hub.hub_api("POST", f"/groups/course-{COURSE}-learners/users", json={"users": ["nina"]}).ok
    after = get(platform, "nina", "recommendations", kind="exercise")
    assert after.status_code == 200 and after.json()["items"], after.text
    assert all(item["course"] == COURSE and item["reason"] for item in after.json()["items"])
