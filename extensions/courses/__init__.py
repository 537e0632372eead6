"""The courses hub service: course catalogue, enrollment, learner profiles and the HTTP exchange for nbgrader."""
from .app import CoursesService

__all__ = ["CoursesService"]
