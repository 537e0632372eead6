"""Learning models: knowledge tracing, course and content ranking, offline evaluation. No web code.

Recommendations say why as structured reasons (a code and parameters, :mod:`.reasons`), never English."""
from .baselines import ImplicitALS, PopularityRecommender
from .bkt import BKT
from .next_step import rank_next_steps
from .ranking import CourseRecommender
from .tracing import MASTERY_LEVELS, PFA, KnowledgeTracer, SkillRateBaseline, mastery_level

__all__ = [
    "BKT",
    "CourseRecommender",
    "ImplicitALS",
    "KnowledgeTracer",
    "MASTERY_LEVELS",
    "PFA",
    "PopularityRecommender",
    "SkillRateBaseline",
    "mastery_level",
    "rank_next_steps",
]
