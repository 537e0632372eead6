"""Grading engine: nbgrader autograde in sandboxes, the warm pool, the job queue and workers. No web code."""
