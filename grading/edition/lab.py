"""JupyterLab for the course, in student mode or instructor mode.

Student mode (``make lab``) opens work/, the student's own copies of the
release/ notebooks (filled on first use, never overwritten: grading/edition/workcopy.py),
with nbgrader's student tools (Validate, Assignments) and ipywidgets, and
nothing else: the instructor
tools (formgrader, Create Assignment, course list) are switched off both in
the browser and on the server, and JupyterLab's "get notified about news?"
prompt never appears. Instructor mode (``make instructor``) opens the whole
course with formgrader.

Each mode gets its own Jupyter config and settings directory under
.course/jupyter/, so neither changes the user's own Jupyter setup.
"""

import json
import os
from pathlib import Path

from .student_lab import jupyter_lab

INSTRUCTOR_ONLY = [
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:course-list",
]
SERVER_EXTENSIONS = {
    "nbgrader.server_extensions.assignment_list": "both",
    "nbgrader.server_extensions.validate_assignment": "both",
    "nbgrader.server_extensions.formgrader": "instructor",
    "nbgrader.server_extensions.course_list": "instructor",
}


def prepare(course, instructor=False):
    """Write the mode's config; returns (environment additions, root directory)."""
    mode = "instructor" if instructor else "student"
    base = course.cache / "jupyter" / mode
    config_dir, settings_dir = base / "config", base / "settings"
    for d in (config_dir / "labconfig", settings_dir / "@jupyterlab" / "apputils-extension"):
        d.mkdir(parents=True, exist_ok=True)
    exchange = course.cache / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    extensions = {name: (who == "both" or instructor) for name, who in SERVER_EXTENSIONS.items()}
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": extensions}}, indent=1)
    )
    disabled = {"@jupyterlab/apputils-extension:announcements": True}
    if not instructor:
        disabled.update({name: True for name in INSTRUCTOR_ONLY})
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}, indent=1))
    (settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (config_dir / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course.course_id!r}\n"
        f"c.CourseDirectory.root = {str(course.root)!r}\n"
        # A local exchange so the Assignments panel works outside JupyterHub too.
        f"c.Exchange.root = {str(exchange)!r}\n"
        # formgrader renders graded notebooks with this exporter: sanitize HTML outputs and markdown.
        "c.HTMLExporter.sanitize_html = True\n"
    )
    env = {
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTER_PREFER_ENV_PATH": "1",
    }
    if instructor:
        return env, course.root
    return env, fill_work(course)


def fill_work(course):
    """Fill work/ from release/ (new weeks; updates beside the student's files) and print the notices."""
    from .workcopy import fill

    work = course.root / "work"
    for line in fill(course.root / "release", work):
        print(f"NOTICE: {line}", flush=True)
    return work


def command(course, instructor=False, port=None, no_browser=False, token=None):
    """(argv, env) that start JupyterLab in the chosen mode."""
    extra_env, root = prepare(course, instructor)
    options = [f"--IdentityProvider.token={token}"] if token is not None else []
    return jupyter_lab(root, extra_env, port, no_browser, options)


def run_lab(course, instructor=False, port=None, no_browser=False):
    argv, env = command(course, instructor, port, no_browser)
    mode = "instructor (formgrader on)" if instructor else "student (your copies in work/<week>/; start at week 1)"
    print(f"JupyterLab, {mode}: {Path(argv[2].split('=', 1)[1])}", flush=True)
    os.execvpe(argv[0], argv, env)
