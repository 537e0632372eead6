"""The recommender hub service: per-skill mastery and explained recommendations."""
from .app import RecommenderService

__all__ = ["RecommenderService"]
