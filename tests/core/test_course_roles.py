"""Course roles and the hub groups that mirror them (learnhub/course_roles.py, the only place their names
are built or parsed)."""
from __future__ import annotations

import pytest

from learnhub import course_roles
from learnhub.course_roles import INSTRUCTOR, LEARNER, TA, group_name, parse_group, role_in, roles_from_groups


@pytest.mark.parametrize("role, name", [(LEARNER, "course-intro-python-learners"),
                                        (TA, "course-intro-python-tas"),
                                        (INSTRUCTOR, "course-intro-python-instructors")])
def test_group_names_and_back(role, name):
    assert group_name("intro-python", role) == name
    assert parse_group(name) == ("intro-python", role)


def test_an_unknown_role_has_no_group():
    with pytest.raises(KeyError):
        group_name("c1", "admin")


@pytest.mark.parametrize("name", ["learnhub-instructors", "course-c1-admins", "course--", "c1-learners",
                                  "course-c1-learners-old", "xcourse-c1-tas", "", None])
def test_other_groups_are_not_course_groups(name):
    assert parse_group(name) is None


def test_a_course_id_may_itself_end_like_a_role():
    # Only the last "-<role>s" is the role: the course "ml-tas" has a learners group of its own.
    assert parse_group("course-ml-tas-learners") == ("ml-tas", LEARNER)
    assert group_name("ml-tas", LEARNER) == "course-ml-tas-learners"


def test_the_strongest_role_in_a_course_wins():
    groups = ["course-c1-learners", "course-c1-tas", "course-c2-learners", "learnhub-instructors"]
    assert role_in(groups, "c1") == TA
    assert role_in(groups + ["course-c1-instructors"], "c1") == INSTRUCTOR
    assert role_in(groups, "c2") == LEARNER
    assert role_in(groups, "c3") is None
    assert role_in(None, "c1") is None
    # A group of a course whose id starts like another's is not that course's.
    assert role_in(["course-c1-extra-learners"], "c1") is None


def test_roles_from_groups_keeps_the_strongest_role_per_course_whatever_the_order():
    groups = ["course-c1-tas", "course-c1-learners", "course-c2-learners", "course-c2-instructors",
              "course-c3-learners", "learnhub-instructors", "course-c1-admins"]
    expected = {"c1": TA, "c2": INSTRUCTOR, "c3": LEARNER}
    assert roles_from_groups(groups) == expected
    assert roles_from_groups(list(reversed(groups))) == expected
    assert roles_from_groups([]) == {} and roles_from_groups(None) == {}


def test_roles_are_ordered_strongest_first():
    assert course_roles.ROLES == (INSTRUCTOR, TA, LEARNER)
    assert course_roles.STAFF == (INSTRUCTOR, TA)
