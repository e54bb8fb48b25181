"""`course publish DIR`: the student edition, the only thing students clone.

The edition holds the released notebooks (and any week data files), course_lib
with its data, a student README, runtime-only dependencies (requirements.txt,
environment.yml, a pyproject.toml that installs course_lib), a Makefile whose
``make lab`` starts JupyterLab in student mode on the student's own ``work/``
folder, and a Binder configuration that does the same.

It never holds instructor material: no source/, hidden tests, rubrics, mistake
catalogues or solution lines, and not this package. Every file is scanned for
them before anything is written, and publishing fails if one is found.

DIR may be a previous edition (a git repository students pull from): it is
updated in place. ``.git`` and the students' ``work/`` are never written to;
files the previous edition had and this one has not are removed (only those,
from the manifest ``.edition.json``).
"""

import gzip
import json
import re
import tomllib
from pathlib import Path

import nbformat

from ..authoring.release import leaks, split_lines
from ..course import CourseError
from ..verdict.notebook import HIDDEN_BEGIN, HIDDEN_END
from . import lab

EDITION = Path(__file__).resolve().parent  # grading/edition/: the edition's tools
PACKAGE = EDITION.parent  # grading/
MANIFEST = ".edition.json"
# What course_lib and the student notebooks need at run time, and the student tools
# (nbgrader: Validate and the Assignments panel). Version ranges come from pyproject.toml.
STUDENT_PACKAGES = ("numpy", "matplotlib", "ipywidgets", "ipykernel", "jupyterlab", "nbgrader", "tqdm")
PYTHON_RANGE = ">=3.11,<3.13"
MARKERS = (
    "### BEGIN SOLUTION",
    "### END SOLUTION",
    HIDDEN_BEGIN,
    HIDDEN_END,
    "BEGIN HIDDEN TESTS",
    "### BEGIN MARK SCHEME",
    "### END MARK SCHEME",
)
# Never written to, never removed: git's data, the students' work, their environment.
KEEP = (".git", "work", ".venv", ".exchange")
SECRET_MIN = 12  # shorter solution lines ("return W", "m = len(X)") are generic code


# ----- where the pieces come from ----------------------------------------------
def _project_file(course, name):
    """A file of the course project: from the course directory, else from this package's checkout."""
    for base in (course.root, PACKAGE.parent):
        if (base / name).exists():
            return base / name
    raise CourseError(f"{name} not found in {course.root} or {PACKAGE.parent}: publish needs the course project")


def runtime_requirements(course):
    """``name spec`` lines of the student packages, with pyproject.toml's version ranges."""
    deps = tomllib.loads(_project_file(course, "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {}
    for req in deps:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
        by_name[m.group(1).lower()] = m.group(3).strip()
    missing = [p for p in STUDENT_PACKAGES if p not in by_name]
    if missing:
        raise CourseError(f"pyproject.toml does not list {', '.join(missing)}: the edition needs them")
    return [f"{p}{by_name[p]}" for p in STUDENT_PACKAGES]


def _notebook_title(path, default):
    nb = nbformat.read(path, 4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            return first.lstrip("#").strip() or default
    return default


# ----- the files ---------------------------------------------------------------
def edition_files(course):
    """{relative path: (bytes, executable)} of the whole edition."""
    files = {}

    def put(rel, text_or_bytes, executable=False):
        data = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
        files[rel] = (data, executable)

    weeks = _released_weeks(course)
    for week in weeks:
        for f in sorted(course.release(week).iterdir()):
            if f.is_file() and not f.is_symlink() and not f.name.startswith("."):
                put(f"notebooks/{week}/{f.name}", f.read_bytes())
    lib = _project_file(course, "course_lib")
    for f in sorted(lib.rglob("*")):
        rel = f.relative_to(lib)
        if f.is_file() and not f.is_symlink() and not any(p.startswith((".", "__pycache__")) for p in rel.parts):
            if f.suffix != ".pyc":
                put(f"course_lib/{rel.as_posix()}", f.read_bytes())
    put("tools/lab.py", (EDITION / "student_lab.py").read_bytes())
    put("tools/workcopy.py", (EDITION / "workcopy.py").read_bytes())

    reqs = runtime_requirements(course)
    project = tomllib.loads(_project_file(course, "pyproject.toml").read_text())
    put("requirements.txt", _requirements_txt(reqs))
    put("binder/requirements.txt", _requirements_txt(reqs))
    put("binder/runtime.txt", "python-3.11\n")
    put("binder/postBuild", POSTBUILD, executable=True)
    put("environment.yml", _environment_yml(reqs))
    put("pyproject.toml", _pyproject(project, reqs))
    put("Makefile", MAKEFILE)
    put(".gitignore", GITIGNORE)
    put("README.md", _readme(course, weeks))
    for rel, text in _jupyter_config(course).items():
        put(f".jupyter/{rel}", text)
    put(MANIFEST, json.dumps({"course_id": course.course_id, "weeks": weeks, "files": sorted(files)}, indent=1) + "\n")
    return files


def _released_weeks(course):
    """Every week, checked: released, and its release free of instructor content."""
    weeks = course.weeks()
    if not weeks:
        raise CourseError(f"no weeks in {course.root / 'source'}")
    for week in weeks:
        for name in course.notebooks(week):
            path = course.release(week) / f"{name}.ipynb"
            if not path.is_file():
                raise CourseError(f"{path} is missing: run `course release --all` first")
            problems = leaks(course.source(week) / f"{name}.ipynb", path)
            if problems:
                raise CourseError(f"{path} would leak instructor content: {problems[0]}")
    return weeks


def _requirements_txt(reqs):
    return "# What the course needs at run time (course_lib itself: pip install -e .)\n" + "\n".join(reqs) + "\n"


def _environment_yml(reqs):
    lines = ["  - " + re.sub(r"([<>=!~])", r" \1", r, count=1) for r in reqs]
    return (
        "# Conda: conda env create -f environment.yml && conda activate nn-course-student\n"
        "name: nn-course-student\nchannels:\n  - conda-forge\ndependencies:\n"
        f"  - python {PYTHON_RANGE}\n  - pip\n" + "\n".join(lines) + "\n  - pip:\n      - -e .\n"
    )


def _pyproject(project, reqs):
    version = project["project"].get("version", "0.1.0")
    data = project.get("tool", {}).get("setuptools", {}).get("package-data", {}).get("course_lib", [])
    quoted = lambda items: ", ".join(json.dumps(x) for x in items)  # noqa: E731
    return (
        '[build-system]\nrequires = ["setuptools>=61", "wheel"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "nn-course-student"\nversion = "{version}"\n'
        'description = "The neural-networks course, student edition: notebooks and course_lib."\n'
        f'requires-python = "{PYTHON_RANGE.split(",")[0]}"\n'
        f"dependencies = [{quoted(reqs)}]\n\n"
        '[tool.setuptools.packages.find]\ninclude = ["course_lib*"]\n\n'
        f"[tool.setuptools.package-data]\ncourse_lib = [{quoted(data)}]\n"
    )


def _jupyter_config(course):
    """Student mode as static Jupyter config: used by ``make lab`` (JUPYTER_CONFIG_DIR) and by
    Binder, which puts the repository in $HOME, so that this folder is ~/.jupyter there."""
    extensions = {name: who == "both" for name, who in lab.SERVER_EXTENSIONS.items()}
    disabled = {"@jupyterlab/apputils-extension:announcements": True, **{n: True for n in lab.INSTRUCTOR_ONLY}}
    here = "os.path.dirname(os.path.dirname(os.path.abspath(__file__)))"
    return {
        "jupyter_server_config.json": json.dumps({"ServerApp": {"jpserver_extensions": extensions}}, indent=1) + "\n",
        "jupyter_server_config.py": (
            "# Student mode: JupyterLab opens the student's own work/ folder (the notebooks/ copies stay untouched).\n"
            "import os\n\n"
            "c = get_config()  # noqa: F821\n"
            f"_work = os.path.join({here}, 'work')\n"
            "os.makedirs(_work, exist_ok=True)\n"
            "c.ServerApp.root_dir = _work\n"
            "c.ServerApp.default_url = '/lab'\n"
        ),
        "labconfig/page_config.json": json.dumps({"disabledExtensions": disabled}, indent=1) + "\n",
        "lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings": json.dumps(
            {"fetchNews": "false", "checkForUpdates": False}
        )
        + "\n",
        "nbgrader_config.py": (
            "# nbgrader's student tools: Validate, and the Assignments panel with a local exchange\n"
            "# (a JupyterHub with nbgrader's exchange overrides this).\n"
            "import os\n\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {course.course_id!r}\n"
            f"c.Exchange.root = os.path.join({here}, '.exchange')\n"
        ),
    }


def _readme(course, weeks):
    rows = "\n".join(
        f"| {i} | `{w}` | {_notebook_title(course.release(w) / f'{w}.ipynb', w)} |"
        for i, w in enumerate(weeks, 1)
        if (course.release(w) / f"{w}.ipynb").is_file()
    )
    return README.format(rows=rows)


# ----- leak scan ---------------------------------------------------------------
def secret_strings(course):
    """Text that exists only on the instructor's side: solution and hidden-test lines, model
    answers, and the mistake catalogues' lines. Lines that are also public (in a student cell)
    or are course_lib's own code are shipped on purpose and do not count."""
    secret, public = set(), set()
    for week in course.weeks():
        for name in course.notebooks(week):
            s, p = split_lines(nbformat.read(course.source(week) / f"{name}.ipynb", 4))
            secret |= s
            public |= p
    for catalogue in sorted((PACKAGE / "mistakes").glob("*.json")):
        for entry in json.loads(catalogue.read_text()):
            for key in ("replace", "with"):
                secret |= {ln.strip() for ln in str(entry.get(key, "")).splitlines()}
    library = set()
    for f in _project_file(course, "course_lib").rglob("*.py"):
        library |= {ln.strip() for ln in f.read_text().splitlines()}
    return {s for s in secret - public - library if len(s) >= SECRET_MIN and re.search(r"[A-Za-z]", s)}


def _text_of(rel, data):
    """The text to scan in a file (notebook cell sources and outputs; .gz content; None if binary)."""
    if rel.endswith(".gz"):
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if rel.endswith(".ipynb"):
        nb = nbformat.reads(text, 4)
        parts = [c.source for c in nb.cells]
        for out in (o for c in nb.cells for o in c.get("outputs", [])):
            parts += [str(out.get("text", "")), str(out.get("data", {}).get("text/plain", ""))]
        return "\n".join(parts) + "\n" + json.dumps(nb.metadata)
    return text


def find_leaks(files, secrets):
    """Problems in ``files`` ({relative path: bytes}): instructor folders, markers, secret lines."""
    problems = []
    for rel, data in sorted(files.items()):
        parts = rel.split("/")
        if "source" in parts[:-1] or "grading" in parts[:-1]:
            problems.append(f"{rel}: an instructor folder")
        text = _text_of(rel, data)
        if text is None:
            problems.append(f"{rel}: binary file, cannot be checked")
            continue
        problems += [f"{rel}: marker {m!r}" for m in MARKERS if m in text]
        lines = {ln.strip() for ln in text.splitlines()}  # whole lines, as release.leaks compares them
        problems += [f"{rel}: solution line {s[:60]!r}" for s in sorted(secrets & lines)]
        if re.search(r"^\s*(from|import)\s+grading\b", text, re.M):
            problems.append(f"{rel}: imports the instructor package")
    return problems


# ----- writing -----------------------------------------------------------------
def check_destination(course, dest):
    """The edition's folder: outside the course, and empty, new or a previous edition."""
    dest = Path(dest).expanduser().resolve()
    root = course.root.resolve()
    if dest == root or root in dest.parents or dest in root.parents:
        raise CourseError(f"{dest} overlaps the course directory {root}: publish to a folder outside it")
    if dest.exists() and not dest.is_dir():
        raise CourseError(f"{dest} exists and is not a folder")
    if dest.is_dir() and not (dest / MANIFEST).is_file():
        others = [p.name for p in dest.iterdir() if p.name != ".git"]
        if others:
            raise CourseError(f"{dest} is not empty and is not a student edition (no {MANIFEST}): use a new folder")
    return dest


def _previous_files(dest):
    """Relative paths the previous edition wrote (only safe ones: inside DIR, outside KEEP)."""
    try:
        listed = json.loads((dest / MANIFEST).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [r for r in listed if isinstance(r, str) and _safe(r)]


def _safe(rel):
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and parts[0] not in KEEP and "" not in parts


def publish(course, dest):
    """Write (or update) the student edition in ``dest``; returns (dest, written, removed)."""
    dest = check_destination(course, dest)
    files = edition_files(course)
    problems = find_leaks({rel: data for rel, (data, _) in files.items()}, secret_strings(course))
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise CourseError(f"nothing written: the edition would contain instructor material: {shown}")
    assert all(_safe(rel) for rel in files), "an edition path would land in .git or work/"
    stale = [r for r in _previous_files(dest) if r not in files]
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, (data, executable) in sorted(files.items()):
        path = dest / rel
        if path.is_symlink():
            path.unlink()
        if not (path.is_file() and path.read_bytes() == data):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(rel)
        path.chmod(0o755 if executable else 0o644)
    removed = []
    for rel in stale:
        path = dest / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(rel)
    return dest, written, removed


# ----- templates -----------------------------------------------------------------
MAKEFILE = """\
# make lab: create .venv on first use, install what the course needs, start JupyterLab on work/.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do command -v $$p >/dev/null && \\
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: lab install work clean

$(STAMP): requirements.txt pyproject.toml
\t@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed (python3.11 or newer on PATH)"; exit 1; }
\t@test -x $(PY) || $(PYTHON) -m venv $(VENV)
\t$(PY) -m pip install --quiet --upgrade pip
\t$(PY) -m pip install --quiet -r requirements.txt
\t$(PY) -m pip install --quiet --no-deps -e .
\t@touch $@

install: $(STAMP)  ## only the environment

lab: $(STAMP)  ## fill work/ (never overwriting your files) and start JupyterLab there
\t$(PY) tools/lab.py

work:  ## only fill work/ with new weeks and updates (beside your files)
\t@python3 tools/lab.py --fill-only

clean:  ## remove the environment (your work/ stays)
\trm -rf $(VENV)
"""

GITIGNORE = """\
# Your own work: git pull never touches it
work/
# The environment and what JupyterLab and Python write while you work
.venv/
.exchange/
.jupyter/lab/workspaces/
.jupyter/migrated
__pycache__/
*.egg-info/
build/
.ipynb_checkpoints/
"""

POSTBUILD = """\
#!/bin/bash
# Binder: install course_lib and fill work/. The repository is $HOME on Binder, so .jupyter/
# (student mode, opening work/) is the Jupyter configuration folder.
set -euo pipefail
python -m pip install --no-cache-dir --no-deps -e .
python tools/lab.py --fill-only
"""

README = """\
# Neural networks: the student edition

Four weeks of notebooks, from linear regression to backpropagation, with a small
numpy library (`course_lib`) and checks that tell you which mistake you made.

| week | folder | topic |
|---|---|---|
{rows}

## Start

You need Python 3.11 or newer and `make` (Linux, macOS, or WSL on Windows):

```bash
make lab
```

The first time, this creates `.venv/` and installs what the course needs (a few
minutes). JupyterLab then opens on your **work** folder: open
`week1_linear_regression/` and work from the top. Each exercise is a function to
write; the cell below it checks your answer and says what looks wrong.
Demos use your functions once they work. Click **Validate** before you hand in.

With conda instead: `conda env create -f environment.yml`, `conda activate nn-course-student`,
then `python tools/lab.py`. On Binder the course opens the same way.

## Your work lives in `work/`

`work/<week>/<week>.ipynb` is yours. `make lab` copies a week there the first
time and never writes over it again. `notebooks/` holds the course's clean
copies: don't work in those, they change when the course is updated. `work/` is
ignored by git, so keep your own backup (or commit it somewhere of your own).

## Getting course updates

```bash
git pull
make lab
```

If a week you have started has changed, the new version arrives **beside**
yours, as `<week>.updated-YYYY-MM-DD.ipynb`, and `make lab` tells you so. Your
file is never replaced: copy over what you need.

## Handing in

Hand in `work/<week>/<week>.ipynb` the way your instructor asks. On a JupyterHub
with nbgrader, use the *Assignments* panel.
"""
