"""Start JupyterLab for this course in student mode, on your own work/ folder.

    python tools/lab.py               fill work/ from notebooks/, then start JupyterLab in work/
    python tools/lab.py --fill-only   only fill work/ (new weeks; updates go beside your files)

Your notebooks live in work/<week>/: nothing in the course (git pull, a new
edition) ever writes over them. JupyterLab's settings for the course (nbgrader's
Validate button and Assignments panel on, no news prompt) are in .jupyter/.

Standard library only: this file runs before anything is installed.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent


def fill():
    """Fill work/ and print what the student should know about."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    import workcopy  # the copy next to this file

    for line in workcopy.fill(ROOT / "notebooks", ROOT / "work"):
        print(f"NOTICE: {line}", flush=True)


def command(port=None, no_browser=False):
    """(argv, env) that start JupyterLab with this course's student settings."""
    config = ROOT / ".jupyter"
    env = {
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTERLAB_SETTINGS_DIR": str(config / "lab" / "user-settings"),
        "JUPYTER_PREFER_ENV_PATH": "1",
    }
    return jupyter_lab(ROOT / "work", env, port, no_browser)


def jupyter_lab(root, extra_env, port=None, no_browser=False, options=()):
    """(argv, env) that start this Python's JupyterLab in ``root`` (also used by the instructor's `course lab`)."""
    env = dict(os.environ, **extra_env)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    jupyter = shutil.which("jupyter", path=env["PATH"]) or "jupyter"
    argv = [jupyter, "lab", f"--ServerApp.root_dir={root}", *options]
    if port:
        argv.append(f"--ServerApp.port={port}")
    if no_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # containers and CI machines often run as root
    return argv, env


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fill-only", action="store_true", help="fill work/ and exit")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args(argv)
    fill()
    if args.fill_only:
        return 0
    argv, env = command(args.port, args.no_browser)
    print("JupyterLab: your notebooks are in work/<week>/ (start at week 1)", flush=True)
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    sys.exit(main())
