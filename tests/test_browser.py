"""A student's first session in JupyterLab, in Debian's chromium, driven by Playwright.

Starts `course lab` (student mode) on a copy of the course, opens the week 2
notebook and checks what a student sees: no dialog or pop-up, run all
cells (only exercises fail), solve one exercise in the editor, move a widget
slider, click nbgrader's Validate. Screenshots of every step go to
tests/output/browser/ (or $COURSE_TEST_OUTPUT).
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grading.course import Course
from grading.edition.lab import command
from grading.verdict.notebook import cell_role
from tests.conftest import released_course

pytestmark = [pytest.mark.slow, pytest.mark.browser]
REPO = Path(__file__).resolve().parents[1]
WEEK = "week2_logistic_regression"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUT = Path(os.environ.get("COURSE_TEST_OUTPUT", REPO / "tests" / "output")) / "browser"
SIGMOID = (
    "def sigmoid(z):\n"
    "    z = np.asarray(z, dtype=np.float64)\n"
    "    return np.exp(np.minimum(z, 0.0)) / (1.0 + np.exp(-np.abs(z)))\n"
)
# Chromium as root in a container: no sandbox; no background traffic to Google (closed network).
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@contextlib.contextmanager
def jupyter(course, instructor, log_name):
    """JupyterLab for ``course`` on a free loopback port, as `course lab` starts it: (base URL, token)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    argv, env = command(course, instructor=instructor, port=port, no_browser=True, token=token)
    argv.append("--ServerApp.ip=127.0.0.1")
    OUT.mkdir(parents=True, exist_ok=True)
    log = open(OUT / log_name, "w")
    proc = subprocess.Popen(
        argv, env=env, cwd=course.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"JupyterLab exited: see {OUT / log_name}")
                time.sleep(0.2)
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (make test installs it: apt-get install chromium)")
    course = released_course(tmp_path_factory.mktemp("lab") / "course", WEEK)
    with jupyter(course, instructor=False, log_name="jupyterlab.log") as (base, token):
        yield {"base": base, "token": token, "course": course}


@pytest.fixture(scope="module")
def browser():
    """One chromium for the module: Playwright's sync API allows one running instance per thread."""
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (make test installs it: apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(lab, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    pg.goto(f"{lab['base']}/lab/tree/{WEEK}/{WEEK}.ipynb?token={lab['token']}")
    pg.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    _wait_idle(pg)
    yield pg
    context.close()


def _shot(pg, name):
    pg.screenshot(path=str(OUT / name), full_page=False)


def _wait_idle(pg, timeout=180):
    """Until the kernel is idle and no cell shows the busy prompt [*]."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = pg.locator(".jp-InputPrompt:has-text('[*]')").count()
        status = (
            pg.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
            if pg.locator(".jp-Notebook-ExecutionIndicator").count()
            else "idle"
        )
        if busy == 0 and status in (None, "idle"):
            return
        time.sleep(0.5)
    raise AssertionError("the kernel stayed busy")


def _saved(lab, pg):
    pg.keyboard.press("Control+s")
    time.sleep(2)
    return nbformat.read(lab["course"].root / "work" / WEEK / f"{WEEK}.ipynb", 4)  # the student's copy


def test_1_opens_with_no_dialog_or_popup(page):
    time.sleep(4)  # dialogs and toasts appear a moment after load
    _shot(page, "1_opened.png")
    assert page.locator(".jp-Dialog").count() == 0, "a dialog (e.g. Select Kernel) is open"
    toasts = " ".join(page.locator(".Toastify__toast, .jp-toast-message").all_inner_texts())
    assert "notified" not in toasts.lower() and "news" not in toasts.lower(), toasts
    assert "Python 3" in page.locator(".jp-KernelName, .jp-Toolbar-kernelName").first.inner_text()


def test_2_no_instructor_tools_for_students(page, lab):
    menus = " ".join(page.locator(".lm-MenuBar-itemLabel").all_inner_texts())
    page.get_by_text("Nbgrader", exact=True).click()
    items = " ".join(page.locator(".lm-Menu-itemLabel").all_inner_texts())
    page.keyboard.press("Escape")
    assert "Formgrader" not in items and "Course List" not in items, items
    assert "Create Assignment" not in page.content()
    assert "Validate" in page.content()
    req = urllib.request.Request(f"{lab['base']}/formgrader?token={lab['token']}")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=10)
    assert "Nbgrader" in menus


def test_3_run_all_cells_only_exercises_fail(page, lab):
    page.get_by_text("Run", exact=True).first.click()
    page.get_by_text("Run All Cells", exact=True).click()
    time.sleep(2)
    _wait_idle(page, timeout=300)
    _shot(page, "3_run_all.png")
    nb = _saved(lab, page)
    unexpected, stubs = [], 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        role = cell_role(cell)
        if errors and role not in ("solution", "tests"):
            unexpected.append(f"{role}: {errors[0].get('ename')}")
        if role == "tests":
            assert errors and errors[0]["ename"] == "NotImplementedError", cell.metadata["nbgrader"]["grade_id"]
            stubs += 1
    assert not unexpected and stubs >= 5
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    ), "plots were drawn"


def _cell_containing(page, text):
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    for i in range(cells.count()):
        if text in (cells.nth(i).locator(".jp-InputArea").text_content() or ""):
            return cells.nth(i)
    raise AssertionError(f"no cell contains {text!r}")


def test_4_solve_one_exercise_in_the_editor(page):
    cell = _cell_containing(page, "def sigmoid(z):")
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(SIGMOID)  # no auto-indent or bracket closing from key presses
    page.keyboard.press("Shift+Enter")  # runs it and moves to the test cell below
    page.keyboard.press("Shift+Enter")  # runs the visible checks
    time.sleep(1)
    _wait_idle(page)
    tests = _cell_containing(page, 'check_close("σ(0) is ½"')
    tests.scroll_into_view_if_needed()
    out = tests.locator(".jp-OutputArea").text_content()
    _shot(page, "4_exercise_passes.png")
    assert "✔ σ(0) is ½" in out and "✔ σ at five points" in out and "Error" not in out, out


def test_5_moving_a_slider_redraws_the_widget(page):
    widget = page.locator(".jupyter-widgets:has(.noUi-handle), .widget-vbox:has(.noUi-handle)").first
    widget.scroll_into_view_if_needed()
    image = widget.locator("img").first
    before_img = image.get_attribute("src")
    before_text = widget.inner_text()
    handle = widget.locator(".noUi-handle").nth(1)
    handle.focus()
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Tab")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and image.get_attribute("src") == before_img:
        time.sleep(0.3)
    _shot(page, "5_slider_moved.png")
    assert image.get_attribute("src") != before_img, "the picture did not change"
    assert widget.inner_text() != before_text, "the readout did not change"


def test_6_validate_reports_the_remaining_exercises(page):
    page.get_by_text("Validate", exact=True).first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=240_000)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and "Validating" in dialog.inner_text():
        time.sleep(1)
    text = dialog.inner_text()
    _shot(page, "6_validate.png")
    assert "Validation" in text or "validat" in text.lower(), text
    assert "NotImplementedError" in text or "failed" in text.lower(), text  # other exercises are still open
    page.keyboard.press("Escape")


# ----- student content is inert in the instructor's browser ------------------------
@pytest.fixture(scope="module")
def formgrader(toy_template, tmp_path_factory):
    """Real formgrader (instructor JupyterLab) on a graded class whose submission carries script.

    "payload" is graded by `course grade`; "control" is the same submission whose graded
    notebook is replaced by the raw submitted one, to show that the payload does run when
    the notebook is not made inert (so the checks below can fail).
    """
    from grading.outputs.feedback import write_feedback
    from grading.pipeline import grade_week
    from tests.conftest import copy_course, release_nb, submit
    from tests.fixtures import toy
    from tests.test_outputs import html_payload

    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (make test installs it: apt-get install chromium)")
    course = Course.load(copy_course(toy_template, tmp_path_factory.mktemp("formgrader") / "course"))
    payload = html_payload(release_nb(course))
    for student in ("payload", "control"):
        submit(course, student, payload)
    grade_week(course, toy.WEEK, workers=0, progress=False)
    write_feedback(course, toy.WEEK)
    nbformat.write(payload, course.autograded("control", toy.WEEK) / f"{toy.WEEK}.ipynb")
    with course.gradebook() as gb:
        ids = {s: gb.find_submission_notebook(toy.WEEK, toy.WEEK, s).id for s in ("payload", "control")}
    with jupyter(course, instructor=True, log_name="formgrader.log") as (base, token):
        yield {"base": base, "token": token, "course": course, "ids": ids, "week": toy.WEEK}


def _open_and_look(browser, url, shot):
    """Open ``url`` in a fresh browser context; return (window.pwned, the page's visible text)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        pg = context.new_page()
        pg.goto(url, wait_until="load", timeout=120_000)
        time.sleep(3)  # a fetch() the page started has time to land
        pg.screenshot(path=str(OUT / shot), full_page=True)
        return pg.evaluate("window.pwned === undefined ? null : window.pwned"), pg.inner_text("body")
    finally:
        context.close()


def test_7_student_script_does_not_run_in_formgrader(formgrader, browser):
    fg = formgrader
    pwned_file = fg["course"].root / "pwned.txt"  # where the payload's contents-API PUT would write
    url = f"{fg['base']}/formgrader/submissions/{fg['ids']['payload']}/?token={fg['token']}"
    flag, text = _open_and_look(browser, url, "7_formgrader_payload.png")
    assert flag is None and not pwned_file.exists()
    assert "visible printed text" in text and "My answer: the origin." in text
    assert "window.pwned = 1" in text  # the student's script shows as text, for the grader to see

    url = f"{fg['base']}/formgrader/submissions/{fg['ids']['control']}/?token={fg['token']}"
    flag, _ = _open_and_look(browser, url, "7_formgrader_control.png")
    assert flag is not None, "the control (the raw submission) should run its script: the check above can fail"
    pwned_file.unlink(missing_ok=True)


def test_8_feedback_page_is_inert(formgrader, browser):
    fg = formgrader
    page = fg["course"].feedback("payload", fg["week"]) / f"{fg['week']}.html"
    flag, text = _open_and_look(browser, page.as_uri(), "8_feedback_payload.png")
    assert flag is None
    assert "<script>window.pwned=8</script>" in text  # the odd cell id is quoted as text in the notes
