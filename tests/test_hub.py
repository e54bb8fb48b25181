"""A week of the course on a real JupyterHub, driven in Debian's chromium with Playwright.

JupyterHub (PyPI) with configurable-http-proxy (npm, installed by `make test` into
.venv/node) on loopback, PAM logins of real unix accounts made for the test (one instructor,
two students), each user's JupyterLab spawned as that user, and nbgrader's exchange in a
temporary root with nbgrader's documented permissions. The six steps of a week:

  1. the instructor releases the week (`course release`, `nbgrader release_assignment`);
  2. each student logs in on the hub's login page, fetches the week in the Assignments panel,
     works on it (one solves everything, one makes two mistakes; the notebook file is written
     as that student), validates and submits in the panel; the second one after the due date;
  3. the instructor collects (`nbgrader collect`) and grades (`course grade`: parallel, in the sandbox);
  4. the instructor grades the written answers and overrides one code cell in formgrader (its
     own page in the browser: score inputs and comment boxes);
  5. the instructor writes and releases the feedback (`course feedback`, `nbgrader release_feedback`);
  6. each student fetches the feedback in the Assignments panel and opens it in the browser: it
     shows that student's own autograded, written-answer, late-penalty and final totals.

Expected totals are worked out here from the week's point values in source/ and the known
mistakes, overrides and late policy. Screenshots of every step go to tests/output/hub/ (or
$COURSE_TEST_OUTPUT/hub). Select with `-m hub`. Needs root (it creates accounts); what is
missing fails the test with one line saying what to install.
"""

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbgrader.utils import parse_utc

from tests.test_browser import CHROME_ARGS

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.hub]
REPO = Path(__file__).resolve().parents[1]
HUB_FILES = REPO / "tests" / "hub"
WEEK = "week1_linear_regression"
COURSE_DIR = "nn-course"  # in the instructor's home
OUT = Path(os.environ.get("COURSE_TEST_OUTPUT", REPO / "tests" / "output")) / "hub"
VENV_BIN = Path(sys.executable).parent
PROXY = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Student 2's mistakes: predict forgets the bias; normal_equation is left as the stub.
NO_BIAS = "    return X @ W\n"
BROKEN = {"w1_predict": NO_BIAS, "w1_normal_equation": None}
LOST = ("w1_predict_tests", "w1_normal_equation_tests")  # the test cells those two lose
ANSWERS = {
    "w1_learning_rate_answer": "Too large a step jumps past the minimum to a higher loss; the loss grows. Lower α.",
    "w1_overfitting_answer": "Degree 12 fits the noise: low training loss, high validation loss. Pick degree 3.",
}
OVERRIDE = ("second", "w1_predict_tests", 0.5)  # the instructor's override of a code cell in formgrader
COMMENT = "Good: the overshoot and what the loss curve shows."


def _missing():
    """The first thing this test needs that the machine lacks, as one line (None when all is there)."""
    if os.geteuid() != 0:
        return "the hub test creates unix accounts: run it as root (e.g. in CI or a container)"
    for tool in ("useradd", "userdel", "chpasswd", "bwrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make test installs bubblewrap; useradd, chpasswd: Debian's passwd)"
    if not (VENV_BIN / "jupyterhub").exists():
        return "JupyterHub is not installed in the venv: .venv/bin/pip install -e '.[dev]' (make test does)"
    if not PROXY.exists():
        return f"configurable-http-proxy is not installed at {PROXY}: run `make test` (npm install into .venv/node)"
    if CHROMIUM is None:
        return "Debian's chromium is not installed (make test installs it: apt-get install chromium)"
    return None


# ----- unix accounts ----------------------------------------------------------------------
@dataclass
class Account:
    name: str
    password: str
    uid: int
    gid: int
    home: Path


def _make_account(prefix):
    name = f"{prefix}{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name], check=True)
    password = secrets.token_urlsafe(16)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    pw = pwd.getpwnam(name)
    os.chmod(pw.pw_dir, 0o700)  # nobody else reads a home (it holds the exchange cache with submission secrets)
    return Account(name, password, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir))


def _kill_processes_of(uid):
    """SIGKILL every process owned by ``uid`` (an account this test made), by pid."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            owner = entry.stat().st_uid
            if owner == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass


def _remove_account(account):
    _kill_processes_of(account.uid)
    time.sleep(0.2)
    subprocess.run(["userdel", "--remove", "--force", account.name], capture_output=True)


# ----- the interpreter under /root ----------------------------------------------------------
def _traverse_grants():
    """Directories that need o+x so other users can run this venv's Python, with their modes now.

    The venv's python is a symlink into the interpreter's install (here pyenv's, under
    /root, mode 700). The students' and the instructor's JupyterLab, nbgrader and `course`
    run that same interpreter, so every directory on the way to it and to its standard
    library must be traversable by others. Only the execute bit for others is added (no
    listing, no reading), only where it is missing, and the old modes are put back afterwards.
    """
    needed = {}
    targets = [Path(os.path.realpath(sys.executable)), Path(sys.base_prefix) / "lib", Path(sys.prefix), REPO]
    for target in targets:
        for d in [*reversed(target.parents), target] if target.is_dir() else reversed(target.parents):
            mode = d.stat().st_mode
            if not mode & stat.S_IXOTH:
                needed[d] = stat.S_IMODE(mode)
    return needed


@contextlib.contextmanager
def _traversable_interpreter():
    grants = _traverse_grants()
    try:
        for d, mode in grants.items():
            os.chmod(d, mode | stat.S_IXOTH)
        yield
    finally:
        for d, mode in grants.items():
            os.chmod(d, mode)


# ----- running things as a user -------------------------------------------------------------
@dataclass
class Site:
    base: Path  # the test's temporary root (755)
    exchange: Path
    instructor: Account
    students: dict  # "first"/"second" -> Account
    url: str = ""

    @property
    def course(self):
        return self.instructor.home / COURSE_DIR


def user_env(site, account):
    """The environment a user's hub server gets (tests/hub/jupyterhub_config.py), for commands run as them."""
    return {
        "HOME": str(account.home),
        "USER": account.name,
        "LOGNAME": account.name,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": os.pathsep.join(
            str(HUB_FILES / d) for d in (["common"] if account is site.instructor else ["student", "common"])
        ),
        "NBGRADER_EXCHANGE_ROOT": str(site.exchange),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }


def as_user(site, account, *argv, cwd=None, timeout=600, check=True):
    """Run ``argv`` as ``account`` (its uid, gid and groups only), as that user would in a terminal."""
    run = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd or account.home,
        env=user_env(site, account),
        user=account.uid,
        group=account.gid,
        extra_groups=[],
        umask=0o022,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        command = " ".join(map(str, argv))[:200]
        assert run.returncode == 0, f"{command} as {account.name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


def instructor(site, *argv, timeout=600):
    """A command the instructor runs in the course directory (a `course` or `nbgrader` command)."""
    exe = VENV_BIN / argv[0]
    return as_user(site, site.instructor, exe, *argv[1:], cwd=site.course, timeout=timeout)


def gradebook_rows(site, sql, *args):
    """Rows of the instructor's gradebook, read-only (nbgrader's schema; nothing is written, no lock kept)."""
    db = sqlite3.connect(f"file:{site.course / 'gradebook.db'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# ----- the hub ------------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _jupyterhub(site):
    state = site.base / "hub"
    state.mkdir(mode=0o700)
    port, api, proxy_api = _free_port(), _free_port(), _free_port()
    env = dict(
        os.environ,
        COURSE_HUB_URL=f"http://127.0.0.1:{port}",
        COURSE_HUB_API_URL=f"http://127.0.0.1:{api}",
        COURSE_HUB_PROXY_API=f"http://127.0.0.1:{proxy_api}",
        COURSE_HUB_PROXY=str(PROXY),
        COURSE_HUB_STATE=str(state),
        COURSE_HUB_JUPYTER=str(HUB_FILES),
        COURSE_HUB_INSTRUCTORS=site.instructor.name,
        COURSE_HUB_STUDENTS=",".join(a.name for a in site.students.values()),
        COURSE_HUB_COURSE_DIR=COURSE_DIR,
        NBGRADER_EXCHANGE_ROOT=str(site.exchange),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    )
    log_path = OUT / "jupyterhub.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [VENV_BIN / "jupyterhub", "-f", HUB_FILES / "jupyterhub_config.py"],
        cwd=state,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/hub/api/", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterHub did not start: see {log_path}")
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the hub stops the users' servers and its proxy
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        pid_file = state / "jupyterhub-proxy.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)  # a proxy the hub left behind
        log.close()


def _course_for(account):
    """The instructor's course directory: this repository's course for one week, owned by the instructor."""
    root = account.home / COURSE_DIR
    for part in ("source", "release"):
        shutil.copytree(REPO / part / WEEK, root / part / WEEK)
    shutil.copy(REPO / "nbgrader_config.py", root)
    with open(root / "nbgrader_config.py", "a") as fh:  # the course's late policy: late work scores 0
        fh.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    # The instructor's own nbgrader config, for formgrader (its server runs in the home folder): the
    # course's settings (late policy, feedback without hidden tests), then where the course is.
    jupyter = account.home / ".jupyter"
    jupyter.mkdir()
    (jupyter / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(root / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.db_url = {f'sqlite:///{root}/gradebook.db'!r}\n"
    )
    for path in (root, jupyter):
        for d, _, files in os.walk(path):
            os.chown(d, account.uid, account.gid)
            for f in files:
                os.chown(os.path.join(d, f), account.uid, account.gid)


@pytest.fixture(scope="module")
def site():
    problem = _missing()
    if problem:
        pytest.fail(problem)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("failed_*.png"):
        old.unlink()
    base = Path(tempfile.mkdtemp(prefix="nn-hub-", dir="/tmp"))
    base.chmod(0o755)
    accounts = []
    try:
        with _traversable_interpreter():
            for prefix in ("nnteach", "nnstuda", "nnstudb"):
                accounts.append(_make_account(prefix))
            # nbgrader's exchange root: world-writable with the sticky bit (nbgrader's docs); the
            # course's inbound/ (write, no list) and feedback/ (no list) are made by nbgrader itself.
            exchange = base / "exchange"
            exchange.mkdir()
            exchange.chmod(0o1777)
            s = Site(base, exchange, accounts[0], {"first": accounts[1], "second": accounts[2]})
            _course_for(s.instructor)
            with _jupyterhub(s) as url:
                s.url = url
                yield s
    finally:
        for account in accounts:
            _remove_account(account)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield b
        b.close()


# ----- the browser side ---------------------------------------------------------------------
OPEN_PAGES = []  # every user's page, for a screenshot of each when a step fails


def shot(page, name):
    page.screenshot(path=str(OUT / name), full_page=False)


def start_login(site, browser, account):
    """A new browser session on the hub's login page: the account's name and password, submitted.

    The hub then starts the user's JupyterLab; the test does other work meanwhile (login()).
    """
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"{site.url}/hub/login")
    page.fill("#username_input", account.name)
    page.fill("#password_input", account.password)
    page.click("#login_submit")
    OPEN_PAGES.append(page)
    return page


def login(site, browser, account, page=None):
    """The account's JupyterLab, open in the browser (after start_login, or logging in now)."""
    page = page or start_login(site, browser, account)
    page.wait_for_url(re.compile(rf"/user/{account.name}/lab"), timeout=120_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    time.sleep(1)
    return page


def open_assignments(page):
    """nbgrader's Assignments panel, from the Nbgrader menu of the student's JupyterLab."""
    page.get_by_text("Nbgrader", exact=True).click()
    page.get_by_text("Assignment List", exact=True).click()
    page.wait_for_selector("#released_assignments_list", timeout=60_000)


def text(html):
    """The page's text as a student reads it: tags removed, spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


# ----- the notebooks --------------------------------------------------------------------------
def _solution(source):
    return "\n".join(ln for ln in source.splitlines() if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def worked(fetched, broken=None):
    """The fetched notebook with every exercise solved from source/ except ``broken`` ones, answers written."""
    broken = broken or {}
    src = nbformat.read(REPO / "source" / WEEK / f"{WEEK}.ipynb", 4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in src.cells if "nbgrader" in c.metadata}
    for cell in fetched.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if not meta.get("solution"):
            continue
        if cell.cell_type == "markdown":
            cell.source = ANSWERS.get(gid, "A short answer.")
        elif gid in broken:
            if broken[gid] is not None:  # keep the signature and docstring, replace the body
                cell.source = cell.source.split("    # YOUR CODE HERE")[0] + broken[gid]
        else:
            cell.source = _solution(solutions[gid])
    return fetched


def manual_grades(who):
    """What the instructor gives each written answer in formgrader: the first student full marks but
    half a point off the last answer, the second half a point for each answer."""
    points, written = week_points()
    answers = [g for g in points if g in written]
    if who == "first":
        return {g: points[g] - (0.5 if g == answers[-1] else 0) for g in answers}
    return {g: 0.5 for g in answers}


def week_points():
    """{grade_id: points} of the week's graded cells, and which of them are written answers (source/)."""
    src = nbformat.read(REPO / "source" / WEEK / f"{WEEK}.ipynb", 4)
    points, written = {}, set()
    for cell in src.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            points[meta["grade_id"]] = meta["points"]
            if cell.cell_type == "markdown":
                written.add(meta["grade_id"])
    return points, written


# ----- the six steps --------------------------------------------------------------------------
def step1_release(site, browser):
    page = start_login(site, browser, site.instructor)
    instructor(site, "course", "release", WEEK)
    instructor(site, "nbgrader", "release_assignment", WEEK)
    page = login(site, browser, site.instructor, page)
    page.goto(f"{site.url}/user/{site.instructor.name}/formgrader/manage_assignments")
    page.wait_for_selector(f"text={WEEK}")
    shot(page, "1_instructor_released.png")
    assert (site.exchange / "nn-course" / "outbound" / WEEK / f"{WEEK}.ipynb").is_file()
    return page


def step2_student(site, browser, who, page):
    account = site.students[who]
    page = login(site, browser, account, page)
    # students get the Assignments panel but no formgrader, in the browser and on the server
    req = urllib.request.Request(f"{site.url}/user/{account.name}/formgrader")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=10)
    open_assignments(page)
    released = page.locator("#released_assignments_list")
    released.get_by_text(WEEK).wait_for()
    shot(page, f"2_{who}_released.png")
    released.get_by_role("button", name="Fetch").click()
    fetched_list = page.locator("#fetched_assignments_list")
    week_link = fetched_list.locator("a.assignment-notebooks-link", has_text=WEEK)
    week_link.wait_for()

    path = account.home / WEEK / f"{WEEK}.ipynb"
    nb = worked(nbformat.read(path, 4), broken=BROKEN if who == "second" else None)
    write = f"import sys; open({str(path)!r}, 'w').write(sys.argv[1])"
    as_user(site, account, VENV_BIN / "python", "-c", write, nbformat.writes(nb))  # as the student saves it

    # validate in the panel: expand the week, nbgrader's Validate button on the notebook
    week_link.click()
    page.locator(f"#nbgrader-nn-course-{WEEK}").get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=180_000)
    verdict = dialog.inner_text()
    shot(page, f"2_{who}_validated.png")
    page.locator(".jp-Dialog button").last.click()
    if who == "first":
        assert "Success" in verdict, verdict
    else:
        assert "Success" not in verdict, verdict

    fetched_list.get_by_role("button", name="Submit").click()
    page.locator("#submitted_assignments_list").get_by_text(WEEK).wait_for(timeout=60_000)
    shot(page, f"2_{who}_submitted.png")
    return page


def submitted_timestamp(site, account):
    """The time nbgrader's exchange recorded for ``account``'s submission (read as root)."""
    (entry,) = (site.exchange / "nn-course" / "inbound").glob(f"{account.name}+{WEEK}+*")
    return (entry / "timestamp.txt").read_text().strip()


def step3_collect_and_grade(site):
    instructor(site, "nbgrader", "collect", WEEK)
    run = instructor(site, "course", "grade", WEEK, "--quiet")
    print(run.stdout)
    for account in site.students.values():
        assert account.name in run.stdout
    assert "UNCONFINED" not in run.stdout + run.stderr
    return run.stdout


def step4_formgrader(site, page):
    """The instructor's manual grades, typed into formgrader's own page for each submission."""
    ids = dict(
        gradebook_rows(
            site,
            "SELECT student.id, submitted_notebook.id FROM submitted_notebook"
            " JOIN notebook ON notebook.id = submitted_notebook.notebook_id"
            " JOIN submitted_assignment ON submitted_assignment.id = submitted_notebook.assignment_id"
            " JOIN student ON student.id = submitted_assignment.student_id WHERE notebook.name = ?",
            WEEK,
        )
    )
    for who, account in site.students.items():
        page.goto(f"{site.url}/user/{site.instructor.name}/formgrader/submissions/{ids[account.name]}/")
        page.wait_for_selector("input.score")
        scores = manual_grades(who)
        if OVERRIDE[0] == who:
            scores[OVERRIDE[1]] = OVERRIDE[2]
        for gid, score in scores.items():
            box = page.locator(f"input.score#{gid}")
            box.scroll_into_view_if_needed()
            box.fill(f"{score:g}")
            box.press("Tab")
        if who == "first":
            comment = page.locator(f"textarea#{next(iter(scores))}-comment")
            comment.fill(COMMENT)
            comment.press("Tab")
        _wait_saved(site, account, scores)
        page.locator(f"input.score#{next(iter(scores))}").scroll_into_view_if_needed()
        shot(page, f"4_formgrader_{who}.png")


def _wait_saved(site, account, scores, timeout=30):
    """Until the gradebook holds the scores typed into formgrader (it saves each on change)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = gradebook_rows(
            site,
            "SELECT base_cell.name, grade.manual_score FROM grade"
            " JOIN base_cell ON base_cell.id = grade.cell_id"
            " JOIN submitted_notebook ON submitted_notebook.id = grade.notebook_id"
            " JOIN submitted_assignment ON submitted_assignment.id = submitted_notebook.assignment_id"
            " WHERE submitted_assignment.student_id = ?",
            account.name,
        )
        saved = {name: score for name, score in rows if name in scores}
        if saved == {g: float(v) for g, v in scores.items()}:
            return
        assert time.monotonic() < deadline, f"formgrader did not save {scores}: the gradebook has {saved}"
        time.sleep(0.5)


def step5_feedback(site, page):
    instructor(site, "course", "feedback", WEEK)
    instructor(site, "nbgrader", "release_feedback", WEEK)
    page.goto(f"{site.url}/user/{site.instructor.name}/formgrader/manage_submissions/{WEEK}")
    page.wait_for_selector(f"text={site.students['first'].name}")
    shot(page, "5_instructor_feedback_released.png")


def step6_student_feedback(site, who, page):
    account = site.students[who]
    page.goto(f"{site.url}/user/{account.name}/lab")
    page.wait_for_selector("#jp-main-dock-panel")
    open_assignments(page)
    submitted = page.locator("#submitted_assignments_list")
    submitted.get_by_role("button", name="Fetch Feedback").first.click()
    submitted.get_by_text("view feedback").first.wait_for(timeout=60_000)
    shot(page, f"6_{who}_fetched_feedback.png")
    (html,) = (account.home / WEEK / "feedback").glob(f"*/{WEEK}.html")
    rel = html.relative_to(account.home)
    page.goto(f"{site.url}/user/{account.name}/files/{rel}")
    page.wait_for_selector("table.totals")
    shot(page, f"6_{who}_feedback.png")
    return text(page.content())


def expected_totals():
    """Each student's totals as the feedback must show them, from the week's points and what happened."""
    points, written = week_points()
    auto_max = sum(p for g, p in points.items() if g not in written)
    manual_max = sum(p for g, p in points.items() if g in written)
    out = {}
    for who in ("first", "second"):
        auto = auto_max - (sum(points[g] for g in LOST) if who == "second" else 0)
        penalty = auto if who == "second" else 0  # "zero": the late notebook's score at grading time
        if OVERRIDE[0] == who:
            auto += OVERRIDE[2]  # the overridden cell (one of LOST) had scored 0
        manual = sum(manual_grades(who).values())
        final = max(0, auto + manual - penalty)
        out[who] = (auto, auto_max, manual, manual_max, penalty, final, auto_max + manual_max)
    return out


def exchange_privacy(site):
    """Student A cannot list, and so cannot find, read or change, B's submission or feedback."""
    a, b = site.students["first"], site.students["second"]
    course = site.exchange / "nn-course"
    probe = f"""
import glob, os, sys
out = []
for d in {[str(course / "inbound"), str(course / "feedback"), str(b.home)]!r}:
    try:
        os.listdir(d)
        out.append("listed " + d)
    except PermissionError:
        pass
out += glob.glob({str(course / "inbound" / f"{b.name}+*")!r})
out += glob.glob({str(course / "feedback" / "*.html")!r})
out += glob.glob({str(b.home / ".local" / "share" / "jupyter" / "nbgrader_cache" / "*" / "*")!r})
print(out)
"""
    run = as_user(site, a, VENV_BIN / "python", "-c", probe)
    assert run.stdout.strip() == "[]", f"{a.name} found: {run.stdout}"
    # nbgrader's modes (the names are unguessable: a timestamp and random text, a hash of a secret)
    assert stat.S_IMODE((course / "inbound").stat().st_mode) & 0o007 == 0o003
    assert stat.S_IMODE((course / "feedback").stat().st_mode) & 0o007 == 0o001
    assert stat.S_IMODE(site.exchange.stat().st_mode) == 0o1777


def test_a_week_on_jupyterhub(site, browser):
    try:
        _a_week(site, browser)
    except BaseException:
        for i, page in enumerate(OPEN_PAGES):
            with contextlib.suppress(Exception):
                shot(page, f"failed_{i}.png")
        raise


def _a_week(site, browser):
    started = time.monotonic()

    def done(step):
        print(f"hub test: step {step} done at {time.monotonic() - started:.0f} s", flush=True)

    teacher = step1_release(site, browser)
    done(1)
    # both students log in now: the hub starts their servers while the first one works
    pages = {who: start_login(site, browser, account) for who, account in site.students.items()}
    step2_student(site, browser, "first", pages["first"])
    # the instructor sets the due date between the two submissions: the second student is late
    due = parse_utc(submitted_timestamp(site, site.students["first"])).timestamp() + 1
    due_text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(due))
    instructor(site, "nbgrader", "db", "assignment", "add", WEEK, f"--duedate={due_text}")
    step2_student(site, browser, "second", pages["second"])
    assert parse_utc(submitted_timestamp(site, site.students["second"])).timestamp() - due > 1
    done(2)

    summary = step3_collect_and_grade(site)
    rows = {line.split()[0]: line for line in summary.splitlines() if line.split()}
    assert "late" in rows[site.students["second"].name] and "late" not in rows[site.students["first"].name]
    teacher.goto(f"{site.url}/user/{site.instructor.name}/formgrader/manage_submissions/{WEEK}")
    teacher.wait_for_selector(f"text={site.students['second'].name}")
    shot(teacher, "3_instructor_graded.png")
    done(3)

    step4_formgrader(site, teacher)
    done(4)
    step5_feedback(site, teacher)
    done(5)

    expected, texts = expected_totals(), {}
    for who in ("first", "second"):
        page_text = texts[who] = step6_student_feedback(site, who, pages[who])
        auto, auto_max, manual, manual_max, penalty, final, total = expected[who]
        me, other = site.students[who].name, site.students["second" if who == "first" else "first"].name
        assert f"Feedback for {me}" in page_text and other not in page_text
        assert f"Autograded exercises {auto:g} / {auto_max:g}" in page_text, page_text[:600]
        assert f"Written answers {manual:g} / {manual_max:g}" in page_text, page_text[:600]
        assert f"Final total {final:g} / {total:g}" in page_text, page_text[:600]
        if penalty:
            assert f"Late penalty −{penalty:g}" in page_text and "Late submission" in page_text, page_text[:600]
        else:
            assert "Late penalty" not in page_text and "Late submission" not in page_text
    assert COMMENT in texts["first"] and "Score set by your instructor" not in texts["first"]
    assert "Score set by your instructor (the autograder gave 0)" in texts["second"]
    assert "forgot to add the bias b" in texts["second"]
    exchange_privacy(site)
    done(6)
