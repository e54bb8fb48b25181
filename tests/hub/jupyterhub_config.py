"""JupyterHub for the course: PAM accounts, each user's JupyterLab spawned as that user.

Used by tests/test_hub.py (`jupyterhub -f tests/hub/jupyterhub_config.py`) and the model
for docs/jupyterhub.md. Everything that differs between a deployment and the test comes
from environment variables, with the deployment's values as defaults:

    COURSE_HUB_URL          where users connect (default http://:8000, all interfaces)
    COURSE_HUB_API_URL      the hub's internal API (default http://127.0.0.1:8081)
    COURSE_HUB_PROXY_API    the proxy's REST API (default http://127.0.0.1:8001)
    COURSE_HUB_PROXY        configurable-http-proxy (default: found on PATH)
    COURSE_HUB_STATE        the hub's own files: database, cookie secret (default /srv/jupyterhub)
    COURSE_HUB_JUPYTER      the course's Jupyter config: common/ for everyone, student/ for students
                            (default /etc/jupyter/nn-course; the test uses tests/hub)
    COURSE_HUB_INSTRUCTORS  comma-separated accounts that get formgrader
    COURSE_HUB_STUDENTS     comma-separated student accounts
    COURSE_HUB_COURSE_DIR   the course directory, relative to each instructor's home (default nn-course)
    NBGRADER_EXCHANGE_ROOT  nbgrader's exchange (default /srv/nbgrader/exchange)
"""

import os
import shutil
import sys

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file
env = os.environ


def _names(var):
    return {name for name in env.get(var, "").split(",") if name}


INSTRUCTORS = _names("COURSE_HUB_INSTRUCTORS")
STUDENTS = _names("COURSE_HUB_STUDENTS")
STATE = env.get("COURSE_HUB_STATE", "/srv/jupyterhub")
VENV_BIN = os.path.dirname(sys.executable)  # jupyterhub-singleuser and nbgrader live beside the hub

c.JupyterHub.bind_url = env.get("COURSE_HUB_URL", "http://:8000")
c.JupyterHub.hub_bind_url = env.get("COURSE_HUB_API_URL", "http://127.0.0.1:8081")
c.ConfigurableHTTPProxy.api_url = env.get("COURSE_HUB_PROXY_API", "http://127.0.0.1:8001")
c.ConfigurableHTTPProxy.command = [env.get("COURSE_HUB_PROXY") or shutil.which("configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = os.path.join(STATE, "jupyterhub-proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(STATE, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(STATE, "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True

# Unix accounts and their passwords (PAM); only the course's people may log in.
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False  # no PAM session modules: containers often lack them
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS

# Each user's JupyterLab runs as that unix user (the hub runs as root), in the user's home.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(VENV_BIN, "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
JUPYTER = env.get("COURSE_HUB_JUPYTER", "/etc/jupyter/nn-course")


def jupyter_config_path(spawner):
    """Config folders the user's server reads before its own ~/.jupyter (JUPYTER_CONFIG_PATH).

    common/ holds nbgrader's exchange settings. Students also get student/, which turns
    formgrader, the course list and Create Assignment off in the server and in the browser;
    being on JUPYTER_CONFIG_PATH, it outranks anything a student writes in ~/.jupyter.
    """
    role = ["common"] if spawner.user.name in INSTRUCTORS else ["student", "common"]
    return os.pathsep.join(os.path.join(JUPYTER, d) for d in role)


c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": jupyter_config_path,
    "NBGRADER_EXCHANGE_ROOT": env.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange"),
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


def _instructor_opens_the_course(spawner):
    """An instructor's JupyterLab opens on the course directory (formgrader needs it below the root)."""
    if spawner.user.name in INSTRUCTORS:
        spawner.default_url = "/lab/tree/" + env.get("COURSE_HUB_COURSE_DIR", "nn-course")


c.Spawner.pre_spawn_hook = _instructor_opens_the_course
