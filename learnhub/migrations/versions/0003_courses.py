"""Courses: catalogue, skills, enrollments, assignments, exercises, learner profiles, the exchange.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _assignment_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["course_id", "assignment_id"],
                                   ["course_assignments.course_id", "course_assignments.id"],
                                   name=f"fk_{table}_course_id_course_assignments", ondelete="CASCADE")


def _course_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=f"fk_{table}_course_id_courses",
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("level", sa.String(32), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("prerequisites", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("open_enrollment", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_courses"),
    )
    op.create_table(
        "course_skills",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("skill_id", sa.String(128), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("prerequisites", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "skill_id", name="pk_course_skills"),
        _course_fk("course_skills"),
    )
    op.create_table(
        "enrollments",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("mirrored_role", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("course_id", "user_name", name="pk_enrollments"),
        _course_fk("enrollments"),
    )
    op.create_index("ix_enrollments_user_name", "enrollments", ["user_name"])
    op.create_table(
        "course_assignments",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("due", TZ, nullable=True),
        sa.Column("hard_deadline", sa.Boolean(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("difficulty", sa.Integer(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("released_at", TZ, nullable=True),
        sa.Column("release_files", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "id", name="pk_course_assignments"),
        _course_fk("course_assignments"),
    )
    op.create_table(
        "course_exercises",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("grade_id", sa.String(128), nullable=False),
        sa.Column("notebook", sa.String(255), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("difficulty", sa.Integer(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "assignment_id", "grade_id", name="pk_course_exercises"),
        _assignment_fk("course_exercises"),
    )
    op.create_table(
        "learner_profiles",
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("goals", sa.Text(), nullable=False),
        sa.Column("goal_skills", sa.JSON(), nullable=False),
        sa.Column("preferred_topics", sa.JSON(), nullable=False),
        sa.Column("level", sa.String(32), nullable=True),
        sa.Column("weekly_hours", sa.Float(), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_name", name="pk_learner_profiles"),
    )
    op.create_table(
        "assignment_fetches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assignment_fetches"),
        _assignment_fk("assignment_fetches"),
    )
    op.create_index("ix_assignment_fetches_lookup", "assignment_fetches",
                    ["course_id", "assignment_id", "user_name"])
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("submitted_at", TZ, nullable=False),
        sa.Column("timestamp", sa.String(64), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("cell_scores", sa.JSON(), nullable=True),
        sa.Column("graded_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_submissions"),
        sa.UniqueConstraint("course_id", "assignment_id", "user_name", "attempt", name="uq_submissions_attempt"),
        _assignment_fk("submissions"),
    )
    op.create_index("ix_submissions_user", "submissions", ["user_name", "course_id"])
    op.create_table(
        "feedback_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("submission_id", sa.String(36), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("released_by", sa.String(255), nullable=False),
        sa.Column("released_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback_files"),
        sa.UniqueConstraint("submission_id", "path", name="uq_feedback_files_path"),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"], name="fk_feedback_files_submission_id_submissions",
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("feedback_files")
    op.drop_index("ix_submissions_user", "submissions")
    op.drop_table("submissions")
    op.drop_index("ix_assignment_fetches_lookup", "assignment_fetches")
    op.drop_table("assignment_fetches")
    op.drop_table("learner_profiles")
    op.drop_table("course_exercises")
    op.drop_table("course_assignments")
    op.drop_index("ix_enrollments_user_name", "enrollments")
    op.drop_table("enrollments")
    op.drop_table("course_skills")
    op.drop_table("courses")
