# learnhub: nbgrader's exchange goes over HTTP to the courses service (no shared directory), fetched
# assignments live in <course>/<assignment>/ (nbgrader's path_includes_course), and autograding runs
# each learner's notebook in learnhub's grading sandbox instead of a kernel of this server.
# Shipped in the learnhub.extensions.singleuser package; found through JUPYTER_CONFIG_PATH.
from learnhub.extensions.singleuser import configure_nbgrader

configure_nbgrader(get_config())  # noqa: F821 (get_config is given by traitlets)
