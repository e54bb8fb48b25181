"""What student code can send out of a grading run: feedback, reports, terminal and outputs.

* Exfiltration: a student value, exception or warning whose name is built at
  run time from the hidden test cell (or any secret) never reaches the result
  JSON, the feedback page, the class report or the instructor's terminal: the
  grader composes every message from a fixed vocabulary.
* Inert notebooks: the graded notebook keeps only text and PNG/JPEG outputs,
  and student markdown/raw cells carry no HTML (the browser side is in
  tests/test_browser.py).
* Output budget: every message a kernel sends counts, bytes and number, so
  empty outputs with huge metadata, display updates and clear_output cannot
  get around it.
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from grading.course import Course
from grading.pipeline import collect_results
from grading.sandbox.execute import message_size, run_notebook
from grading.sandbox.kernels import KernelFactory
from grading.sandbox.layers import Limits
from grading.verdict.inert import inert_markdown, inert_output
from tests.conftest import copy_course, release_nb, submit
from tests.fixtures import toy

pytestmark = pytest.mark.slow
W = toy.WEEK
SECRET = "ZqxExfilKwmbVoj"  # built at run time by the student code below: its source never spells it
CODES = ", ".join(str(ord(c)) for c in SECRET)
PROBE_NAME = "__course_probe__"  # only in the rewritten (hidden) test cell the kernel runs
CORRECT = toy.SIGMOID_SOLUTION.replace("### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION", "")

EXFIL_TYPE = f"""def sigmoid(z):
    secret = "".join(map(chr, [{CODES}]))
    hidden = get_ipython().user_ns["In"][-1]  # the test cell being run, hidden tests included
    T = type(secret + hidden, (), {{"__repr__": lambda self: secret * 10000, "__module__": secret}})
    return T()
"""
EXFIL_NESTED = f"""def sigmoid(z):
    secret = "".join(map(chr, [{CODES}]))
    T = type(secret, (), {{}})
    return [T(), secret]
"""
EXFIL_EXCEPTION = f"""def sigmoid(z):
    secret = "".join(map(chr, [{CODES}]))
    hidden = get_ipython().user_ns["In"][-1]
    raise type(secret + "Error", (Exception,), {{}})(secret + hidden)
"""
EXFIL_WARNING = f"""import sys
def sigmoid(z):
    sys.stderr.write("".join(map(chr, [{CODES}])) + "Warning\\n")
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
"""
SCRIPT = (
    "<script>window.pwned = 1; fetch('/api/contents/pwned.txt', {method: 'PUT', "
    "headers: {'X-XSRFToken': (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || ''}, "
    "body: JSON.stringify({type: 'file', format: 'text', content: 'pwned'})})</script>"
)
PAYLOAD_CELL = f"""from IPython.display import HTML, Javascript, Markdown, SVG, display
display(HTML({SCRIPT!r} + "<b>visible html text</b>"))
display(Javascript("window.pwned = 2"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>window.pwned = 3</script></svg>'))
display(Markdown({SCRIPT!r}))
print("visible printed text")
"""
MARKDOWN_ANSWER = (
    f"My answer: the origin. {SCRIPT} <img src=x onerror='window.pwned=4'> "
    "[click](javascript:window.pwned=5) [also](java\\script:window.pwned=6) &#106;avascript"
)


def html_payload(rel):
    """An honest, correct submission that also carries script in outputs, markdown and raw cells."""
    nb = toy.solved(rel, answer=MARKDOWN_ANSWER)
    cell = nbformat.v4.new_code_cell(PAYLOAD_CELL)
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": SCRIPT, "text/plain": "<IPython.HTML>"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "window.pwned = 7"}),
    ]
    nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_markdown_cell(f"A note of mine: {SCRIPT}"))
    nb.cells.append(nbformat.v4.new_raw_cell(SCRIPT))
    odd = nbformat.v4.new_code_cell("x = 1")
    odd.metadata = {"nbgrader": {"grade_id": "<script>window.pwned=8</script>"}}
    nb.cells.append(odd)
    return nb


METADATA_BOMB = """from IPython.display import publish_display_data
for i in range(10**6):
    publish_display_data({}, metadata={"m": "x" * 100_000})
"""


def _course_cli(root, *args):
    cmd = [str(Path(sys.executable).parent / "course"), "--course", str(root), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    return p.returncode, p.stdout + p.stderr


@pytest.fixture(scope="module")
def graded(toy_template, tmp_path_factory):
    """A class of attackers and one honest student, graded, with feedback and a report, by the CLI."""
    course = Course.load(copy_course(toy_template, tmp_path_factory.mktemp("outputs") / "course"))
    rel = release_nb(course)
    submit(course, "honest", toy.solved(rel))
    for name, sigmoid in [
        ("exfil_type", EXFIL_TYPE),
        ("exfil_nested", EXFIL_NESTED),
        ("exfil_exception", EXFIL_EXCEPTION),
        ("exfil_warning", EXFIL_WARNING),
    ]:
        submit(course, name, toy.solved(rel, sigmoid=sigmoid))
    submit(course, "html_payload", html_payload(rel))
    bomb = toy.solved(rel)
    bomb.cells.append(nbformat.v4.new_code_cell(METADATA_BOMB))
    submit(course, "metadata_bomb", bomb)
    terminal = ""
    for args in (["grade", W, "--workers", "0", "--quiet"], ["feedback", W], ["report", W]):
        code, out = _course_cli(course.root, *args)
        assert code == 0, out
        terminal += out
    return course, collect_results(course, W), terminal


def _everything(course, student):
    """Result JSON (graded notebook included), feedback pages and the class report, as text."""
    texts = [json.dumps(r) for r in _result_files(course, student)]
    texts += [p.read_text() for p in course.feedback(student, W).glob("*.html")]
    texts += [p.read_text() for p in course.autograded(student, W).glob("*.ipynb")]
    return "\n".join(texts)


def _result_files(course, student):
    d = course.autograded(student, W)
    return [json.loads(p.read_text()) for p in d.rglob("*.json")]


def test_no_student_chosen_name_reaches_any_output(graded):
    course, results, terminal = graded
    report = (course.reports / f"{W}.html").read_text()
    assert SECRET not in terminal and PROBE_NAME not in terminal
    assert SECRET not in report and PROBE_NAME not in report
    for student in ("exfil_type", "exfil_nested", "exfil_exception", "exfil_warning"):
        result = results[student]
        assert result["status"] == "graded", result
        text = json.dumps(result) + _everything(course, student)
        assert _result_files(course, student), "the result file was not found"
        assert SECRET not in text, student
        feedback = "".join(p.read_text() for p in course.feedback(student, W).glob("*.html"))
        assert feedback and PROBE_NAME not in feedback, student
        sigmoid = next(c for c in result["notebooks"][W]["cells"] if c["grade_id"] == "w9_sigmoid_tests")
        assert not sigmoid["passed"] and sigmoid["messages"], student


def test_the_fixed_vocabulary_still_says_what_went_wrong(graded):
    _, results, _ = graded

    def messages(student):
        cells = results[student]["notebooks"][W]["cells"]
        return " | ".join(m for c in cells if c["grade_id"] == "w9_sigmoid_tests" for m in c["messages"])

    assert "got a value of another type" in messages("exfil_type")
    assert "got a list" in messages("exfil_nested")
    assert "raised an exception" in messages("exfil_exception")
    assert "wrote text to stderr" in messages("exfil_warning")
    assert sum(c["points"] for c in results["honest"]["notebooks"][W]["cells"]) == 3


def test_the_graded_notebook_keeps_only_inert_content(graded):
    course, results, _ = graded
    assert sum(c["points"] for c in results["html_payload"]["notebooks"][W]["cells"]) == 3
    nb = nbformat.read(course.autograded("html_payload", W) / f"{W}.ipynb", 4)
    mimes = {m for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})}
    assert mimes <= {"text/plain", "image/png", "image/jpeg"}, mimes
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("metadata")]
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "visible printed text" in printed
    for cell in nb.cells:
        if cell.cell_type != "code":
            low = cell.source.lower()
            assert "<script" not in low and "<img" not in low and "<svg" not in low, cell.source
            assert "](javascript:" not in low and "](java\\script:" not in low and "&#106;" not in low, cell.source
    answer = next(c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == "w9_why_bias")
    assert answer.source.startswith("My answer: the origin.") and "window.pwned = 1" in answer.source


def test_an_output_bomb_stops_at_the_budget_and_the_graded_notebook_stays_small(graded):
    course, results, _ = graded
    nb = results["metadata_bomb"]["notebooks"][W]
    assert nb["run_status"] == "output_limit", nb["run_detail"]
    size = (course.autograded("metadata_bomb", W) / f"{W}.ipynb").stat().st_size
    assert size < Limits().max_output_mb * 2**20 / 10, size  # the outputs were empty: nothing kept


# ----- units --------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<IMG SRC=x onerror=alert(1)>",
        "</p><svg onload=alert(1)>",
        "<!--><script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "[x]( JavaScript:alert(1))",
        "[x](java\\script:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x]: vbscript:alert(1)",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
    ],
)
def test_student_markdown_loses_its_html_and_script_links(source):
    out = inert_markdown(source).lower()
    assert "<script" not in out and "<img" not in out and "<svg" not in out and "&#60;" not in out
    assert "javascript:" not in out.replace("\\", "") and "vbscript:" not in out and "(data:" not in out


NASTY_MARKDOWN = [
    "[click]\n\n[click]:\njavascript:alert(1)\n",  # a reference definition, destination on the next line
    "[click]\n\n> [click]: javascript:alert(2)\n",  # ... inside a blockquote
    "[click]\n\n- [click]: javascript:alert(3)\n",  # ... inside a list
    "1. x\n\n    [c]: javascript:alert(4)\n\n[c]\n",  # ... indented in a list item
    "[c]\n\n> - > [c]:\n>   data:text/html;base64,PHNjcmlwdD4=\n",
    "[c](\njavascript:alert(5))",
    "[c]( <javascript:alert(6)>)",
    '[c](javascript:alert(7) "t")',
    "[c]([x](javascript:alert(8)))",
    "![i](javascript:alert(9))",
    "![i]\n\n[i]: vbscript:alert(10)",
    "\\[c](javascript:alert(11))",
    "[c](JaVaScRiPt&colon;alert(12))",
    "$x$ [c](javascript:alert(13)) $y$",
    "$[c]: javascript:alert(14)$\n\n$[c]$ [c]",
    "$$\n[c]: javascript:alert(15)\n$$\n\n[c]",
    "<javascript:alert(16)>",
    "<a href='javascript:alert(17)'>x</a>",
    "<script>alert(18)</script>",
    "`[c]` [c](data:text/html,x)",
]


@pytest.mark.parametrize("source", NASTY_MARKDOWN)
def test_student_markdown_renders_without_links_or_tags(source):
    """Rendered as formgrader's nbconvert renders markdown (mistune), without its sanitizer."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    html = markdown2html_mistune(inert_markdown(source)).lower()
    for scheme in ("javascript:", "data:", "vbscript:"):
        assert f'href="{scheme}' not in html and f'src="{scheme}' not in html, html
    html = re.sub(r'<a class="anchor-link" href="#[^"<>]*">', "", html)  # nbconvert's own heading anchors
    assert not re.search(r"<(?!/?(p|em|strong|code|pre|ul|ol|li|blockquote|hr|br|span|h[1-6])\b)[a-z]", html), html


def test_student_markdown_keeps_its_formatting_and_reads_the_same():
    text = "**bold** and `code`, a < b, see [docs](https://numpy.org), $x_1 & y$ and $W^{[1]} x$"
    safe = inert_markdown(text)
    assert "**bold**" in safe and "`code`" in safe and "$W^{[1]} x$" in safe  # math keeps its brackets
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    html = markdown2html_mistune(safe)
    assert "[docs](" in html and html.count("<a ") == 1  # the link reads as text; the bare address is linked


def test_a_long_student_markdown_is_made_inert_but_not_kept_for_later_submissions():
    from grading.verdict.inert import _inert_markdown

    long = "<script>x</script> [a](javascript:b) " + "word " * 20_000  # 100 KB, over what is cached
    _inert_markdown.cache_clear()
    safe = inert_markdown(long)
    assert "<script" not in safe and "javascript:" not in safe and safe == inert_markdown(long)
    assert _inert_markdown.cache_info().currsize == 0  # a worker keeps no submission's long text
    inert_markdown("# Week 1")
    assert _inert_markdown.cache_info().currsize == 1  # the week's own short cells are still cached


def test_outputs_keep_only_text_and_real_images():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
    out = inert_output(
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": "<script>", "image/png": png, "image/svg+xml": "<svg/>", "text/plain": "fig"},
            metadata={"image/png": {"width": "<script>"}},
        )
    )
    assert dict(out["data"]) == {"image/png": png, "text/plain": "fig"} and not out.get("metadata")
    fake = inert_output(nbformat.v4.new_output("display_data", data={"image/png": "PHNjcmlwdD4="}))
    assert fake is None  # base64 of "<script>" is not a PNG
    assert inert_output(nbformat.v4.new_output("display_data", data={"application/javascript": "x"})) is None


def test_message_size_counts_everything_and_survives_deep_nesting():
    msg = {"header": {}, "content": {"data": {}, "metadata": {"m": "x" * 1000}}, "buffers": [b"y" * 500]}
    assert message_size(msg) >= 1500
    deep = {}
    for _ in range(5000):
        deep = {"a": deep}
    assert message_size({"content": deep}) is None


BOMBS = {
    "empty outputs with huge metadata": """
        from IPython.display import publish_display_data
        for i in range(10**6):
            publish_display_data({}, metadata={"m": "x" * 100_000})
    """,
    "many empty outputs": """
        from IPython.display import publish_display_data
        for i in range(10**6):
            publish_display_data({})
    """,
    "display updates": """
        from IPython.display import display, update_display
        display("start", display_id="d")
        for i in range(10**4):
            update_display({"text/plain": "y" * 100_000}, raw=True, display_id="d")
    """,
    "clear_output between prints": """
        from IPython.display import clear_output
        for i in range(10**4):
            print("z" * 100_000)
            clear_output()
    """,
    "transient data": """
        from IPython.display import publish_display_data
        for i in range(10**4):
            publish_display_data({"text/plain": ""}, transient={"t": "w" * 100_000})
    """,
}


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_every_message_counts_against_the_output_budget(source):
    limits = Limits(cell_seconds=40, max_output_mb=1, max_outputs=2000)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(source))])
    with KernelFactory(limits) as factory:
        kernel = factory.fresh_kernel()
        try:
            r = run_notebook(nb, kernel, limits)
        finally:
            factory.recycle()
    assert r.status == "output_limit", (r.status, r.detail)
    assert len(nbformat.writes(r.nb)) < 2 * 2**20


def test_a_grading_error_is_named_from_a_fixed_vocabulary():
    """An exception's text can quote what the grader was reading (a hidden test): only known names remain."""
    from jsonschema import ValidationError

    from grading.sandbox.kernels import SandboxDamaged
    from grading.verdict.grade import error_reason

    class StudentNamedError(KeyError):  # not Python's nor the grader's: named by its builtin ancestor
        pass

    leak = "BEGIN HIDDEN TESTS z = default_rng(21).normal(0.0, 4.0)"
    cases = {
        ValueError(f"Invalid Signature: {leak!r}"): "grading error (ValueError)",
        ValidationError(leak): "grading error (Exception)",
        StudentNamedError(leak): "grading error (KeyError)",
        SandboxDamaged(f"could not start a kernel (log: {leak})"): "grading error (SandboxDamaged)",
        RecursionError(leak): "grading error: the notebook is nested too deeply to process (RecursionError)",
    }
    assert [error_reason(e) for e in cases] == list(cases.values())
