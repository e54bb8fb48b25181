"""`course publish`: the student edition holds no instructor material, and it starts in student mode.

The leak scanner here is written independently of grading/edition/publish.py (which has its
own check): it reads the instructor's source notebooks and mistake catalogues itself.
"""

import ast
import gzip
import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grading.course import Course, CourseError
from grading.edition.publish import publish

REPO = Path(__file__).resolve().parents[1]
MIN_LINE = 12  # non-trivial solution lines
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "MARK SCHEME")
RUBRIC = re.compile(r"Rubric \(\d+ points?\)", re.I)
INSTRUCTOR_NAMES = {"source", "grading", "mistakes", "autograded", "submitted", "feedback", "gradebook.db"}
DEV_PACKAGES = {
    "pytest",
    "pytest-timeout",
    "playwright",
    "ruff",
    "dask",
    "distributed",
    "psycopg",
    "hypothesis",
    "nbval",
}


# ----- an independent scanner -------------------------------------------------------
def _role(cell):
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    return "manual" if meta.get("solution") and meta.get("grade") and cell.cell_type == "markdown" else None


def instructor_lines(course_root):
    """(secret lines, public lines) of the instructor's notebooks and mistake catalogues."""
    secret, public = set(), set()
    for path in sorted((course_root / "source").glob("*/*.ipynb")):
        for cell in nbformat.read(path, 4).cells:
            lines = [ln.strip() for ln in cell.source.splitlines()]
            if _role(cell) == "manual":
                secret.update(lines)
                continue
            region = None
            for s in lines:
                if s.startswith(("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")):
                    region = s
                elif s.startswith(("### END SOLUTION", "### END HIDDEN TESTS")):
                    region = None
                else:
                    (secret if region else public).add(s)
    for path in sorted((REPO / "grading" / "mistakes").glob("*.json")):
        for entry in json.loads(path.read_text()):
            for key in ("replace", "with"):
                secret.update(ln.strip() for ln in entry[key].splitlines())
    return secret, public


def library_lines():
    """course_lib is shipped on purpose: its own code is not a leak (own-work grading stops delegation)."""
    return {ln.strip() for f in (REPO / "course_lib").rglob("*.py") for ln in f.read_text().splitlines()}


def forbidden_lines(course_root):
    secret, public = instructor_lines(course_root)
    return {s for s in secret - public - library_lines() if len(s) >= MIN_LINE and re.search(r"[A-Za-z]", s)}


def file_lines(path):
    """The text lines of a file as a student sees them (notebook cells, unzipped data); None if binary."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    if path.suffix == ".ipynb":
        nb = nbformat.reads(text, 4)
        text += "\n" + "\n".join(c.source for c in nb.cells)
    return text.splitlines()


def scan(root, forbidden):
    """Every instructor item found under ``root`` (the students' work/ and .git excluded)."""
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".git", "work") or not path.is_file():
            continue
        for part in rel.parts:
            if part in INSTRUCTOR_NAMES:
                found.append((str(rel), f"instructor name {part}"))
        lines = file_lines(path)
        if lines is None:
            found.append((str(rel), "binary file"))
            continue
        text = "\n".join(lines)
        found += [(str(rel), f"marker {m}") for m in MARKERS if m in text]
        found += [(str(rel), "rubric") for _ in RUBRIC.finditer(text)]
        found += [(str(rel), f"line {s}") for s in sorted(forbidden & {ln.strip() for ln in lines})]
        if re.search(r"^\s*(from|import)\s+grading\b", text, re.M):
            found.append((str(rel), "imports grading"))
    return found


# ----- the edition of the real course --------------------------------------------------
@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    dest = tmp_path_factory.mktemp("edition") / "nn-course"
    publish(Course.load(REPO), dest)
    return dest


def test_the_edition_holds_the_student_material(edition):
    weeks = sorted(p.name for p in (REPO / "source").iterdir() if p.is_dir())
    for week in weeks:
        shipped = edition / "notebooks" / week / f"{week}.ipynb"
        assert shipped.read_bytes() == (REPO / "release" / week / f"{week}.ipynb").read_bytes()
    for f in ("course_lib/__init__.py", "course_lib/data/digits.csv.gz", "course_lib/data/PROVENANCE.md"):
        assert (edition / f).read_bytes() == (REPO / f).read_bytes()
    for f in ("README.md", "Makefile", "requirements.txt", "environment.yml", "pyproject.toml", ".gitignore"):
        assert (edition / f).is_file(), f
    assert not (edition / "work").exists(), "publish never writes in work/"
    readme = (edition / "README.md").read_text()
    assert "make lab" in readme and "work/" in readme and "git pull" in readme and "updated-" in readme


def test_the_edition_contains_no_instructor_material(edition):
    forbidden = forbidden_lines(REPO)
    assert len(forbidden) > 50, "the scanner found too few solution lines to mean anything"
    assert scan(edition, forbidden) == []


def test_the_scanner_finds_planted_leaks(edition, tmp_path):
    forbidden = forbidden_lines(REPO)
    copy = shutil.copytree(edition, tmp_path / "leaky")
    solution = sorted(forbidden)[0]
    catalogue = json.loads(next((REPO / "grading" / "mistakes").glob("*.json")).read_text())
    mistake = next(
        e["replace"] for e in catalogue if len(e["replace"].strip()) >= MIN_LINE and "\n" not in e["replace"]
    )
    nb_path = next((copy / "notebooks").glob("*/*.ipynb"))
    nb = nbformat.read(nb_path, 4)
    nb.cells.append(nbformat.v4.new_code_cell(f"def f():\n    {solution}\n"))
    nbformat.write(nb, nb_path)
    (copy / "course_lib" / "extra.py").write_text(f"x = 1\n    {mistake}\n")
    (copy / "NOTES.md").write_text("### BEGIN HIDDEN TESTS\n**Rubric (2 points).** mentions the origin\n")
    (copy / "source").mkdir()
    (copy / "source" / "x.txt").write_text("hello\n")
    (copy / "tools" / "grade.py").write_text("from grading.verdict.judge import compare\n")
    found = scan(copy, forbidden)
    rel_nb = str(nb_path.relative_to(copy))
    assert (rel_nb, f"line {solution}") in found
    assert ("course_lib/extra.py", f"line {mistake.strip()}") in found
    assert ("NOTES.md", "marker BEGIN HIDDEN TESTS") in found and ("NOTES.md", "rubric") in found
    assert ("source/x.txt", "instructor name source") in found
    assert ("tools/grade.py", "imports grading") in found


# ----- publish itself fails closed, and only writes where it may ----------------------------
def test_publish_refuses_a_release_that_leaks_and_writes_nothing(toy_course, tmp_path):
    from tests.fixtures import toy

    # A week data file that carries a solution line (nbgrader copies extra files verbatim).
    (toy_course.release(toy.WEEK) / "notes.txt").write_text("return np.where(z >= 0, 1 / (1 + e), e / (1 + e))\n")
    with pytest.raises(CourseError, match="instructor material"):
        publish(toy_course, tmp_path / "ed")
    assert not (tmp_path / "ed").exists()


def test_publish_refuses_folders_inside_or_around_the_course_and_foreign_folders(toy_course, tmp_path):
    for bad in (
        toy_course.root,
        toy_course.root / "edition",
        toy_course.root / "release" / "x",
        toy_course.root.parent,
    ):
        with pytest.raises(CourseError, match="overlaps the course"):
            publish(toy_course, bad)
    assert not (toy_course.root / "edition").exists()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(CourseError, match="not a student edition"):
        publish(toy_course, foreign)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]


def test_republishing_keeps_git_and_work_and_removes_only_its_own_stale_files(toy_course, tmp_path):
    from tests.fixtures import toy

    dest = tmp_path / "ed"
    (toy_course.release(toy.WEEK) / "extra.csv").write_text("1,2\n")
    publish(toy_course, dest)
    assert (dest / "notebooks" / toy.WEEK / "extra.csv").is_file()
    (dest / ".git").mkdir()
    (dest / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (dest / "work" / toy.WEEK).mkdir(parents=True)
    (dest / "work" / toy.WEEK / f"{toy.WEEK}.ipynb").write_text("mine")
    (dest / "mine.txt").write_text("the instructor's own note")
    (toy_course.release(toy.WEEK) / "extra.csv").unlink()
    _, written, removed = publish(toy_course, dest)
    assert removed == [f"notebooks/{toy.WEEK}/extra.csv"] and written == [".edition.json"]
    assert (dest / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (dest / "work" / toy.WEEK / f"{toy.WEEK}.ipynb").read_text() == "mine"
    assert (dest / "mine.txt").is_file()


# ----- runtime-only dependencies ------------------------------------------------------
def _requirement_names(lines):
    return {re.match(r"[A-Za-z0-9_.\-]+", ln).group(0).lower() for ln in lines if ln.strip() and ln[0].isalpha()}


def _third_party_imports(sources):
    names = set()
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue  # notebook cells with IPython magics; none import anything
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "course_lib"}


def test_dependencies_are_what_the_course_runs_on_and_nothing_for_developers(edition):
    reqs = (edition / "requirements.txt").read_text().splitlines()
    names = _requirement_names(reqs)
    assert (edition / "binder" / "requirements.txt").read_text() == (edition / "requirements.txt").read_text()
    conda = {
        m.group(1)
        for m in re.finditer(
            r"^  - ([a-z][a-z0-9_.\-]*)", (edition / "environment.yml").read_text().split("dependencies:")[1], re.M
        )
        if m.group(1) not in ("python", "pip")
    }
    project = tomllib.loads((edition / "pyproject.toml").read_text())
    assert conda == names == _requirement_names(project["project"]["dependencies"])
    assert not names & DEV_PACKAGES, names & DEV_PACKAGES
    assert {"jupyterlab", "nbgrader", "ipykernel", "ipywidgets"} <= names  # the lab, Validate, widgets
    sources = [f.read_text() for f in (edition / "course_lib").rglob("*.py")]
    for nb_path in (edition / "notebooks").glob("*/*.ipynb"):
        sources += [c.source for c in nbformat.read(nb_path, 4).cells if c.cell_type == "code"]
    distribution = {"IPython": "ipykernel"}  # ipykernel brings IPython
    needed = {distribution.get(n, n).lower() for n in _third_party_imports(sources)}
    assert needed <= names, f"imported at run time but not installed: {needed - names}"
    # Version ranges are the instructor project's.
    main = {
        re.match(r"[A-Za-z0-9_.\-]+", r).group(0).lower(): r
        for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    for line in reqs:
        if line and line[0].isalpha():
            assert main[_requirement_names([line]).pop()].replace(" ", "") == line


def test_make_lab_installs_runtime_requirements_and_starts_the_student_script(edition):
    dry = subprocess.run(["make", "-n", "lab", "PYTHON=python3"], cwd=edition, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "pip install --quiet -r requirements.txt" in dry.stdout
    assert ".[dev]" not in dry.stdout and "tools/lab.py" in dry.stdout
    assert "work/" in (edition / ".gitignore").read_text().splitlines()


# ----- student mode, locally and on Binder --------------------------------------------------
def test_binder_configuration(edition):
    post = edition / "binder" / "postBuild"
    assert post.stat().st_mode & stat.S_IXUSR and post.read_text().startswith("#!/bin/bash")
    assert "pip install" in post.read_text() and "tools/lab.py --fill-only" in post.read_text()
    assert re.fullmatch(r"python-3\.1[1-9]\n", (edition / "binder" / "runtime.txt").read_text())
    server = json.loads((edition / ".jupyter" / "jupyter_server_config.json").read_text())["ServerApp"]
    ext = server["jpserver_extensions"]
    assert ext["nbgrader.server_extensions.formgrader"] is False
    assert ext["nbgrader.server_extensions.course_list"] is False
    assert ext["nbgrader.server_extensions.validate_assignment"] is True
    assert ext["nbgrader.server_extensions.assignment_list"] is True
    page = json.loads((edition / ".jupyter" / "labconfig" / "page_config.json").read_text())
    for name in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment"):
        assert page["disabledExtensions"][name] is True


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_plain_jupyterlab_started_as_binder_does_opens_work_in_student_mode(edition, tmp_path):
    """Binder puts the repository in $HOME and runs Jupyter with its defaults: ~/.jupyter is ours."""
    home = shutil.copytree(edition, tmp_path / "home")
    subprocess.run([sys.executable, "tools/lab.py", "--fill-only"], cwd=home, check=True, capture_output=True)
    port, token = _free_port(), secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(home), PATH=os.path.dirname(sys.executable) + os.pathsep + env["PATH"])
    argv = [
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                listing = json.load(urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=2))
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
                time.sleep(0.2)
        names = {item["name"] for item in listing["content"]}
        weeks = {p.name for p in (edition / "notebooks").iterdir()}
        assert names == weeks, names  # the root is work/: no notebooks/, course_lib/, tools/
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/formgrader?token={token}", timeout=10)
        assert err.value.code == 404
        html = urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10).read().decode()
        page = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
        disabled = json.loads(page.group(1))["disabledExtensions"]
        assert "@jupyter/nbgrader:formgrader" in disabled and "@jupyter/nbgrader:create-assignment" in disabled
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
        log.close()
