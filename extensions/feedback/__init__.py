"""The feedback hub service: submissions, live autograding feedback and help requests."""
from .app import FeedbackService

__all__ = ["FeedbackService"]
