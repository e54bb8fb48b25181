"""The grading sandbox: isolation between students, no network, no reading the course, limits.

These run real kernels in the real sandbox (bubblewrap and cgroups where the
machine has them, see `course doctor`); tests that need a mechanism skip,
with the reason, when it is missing.
"""

import os
import socket
import subprocess
import sys
import textwrap

import nbformat
import pytest

from grading.execute import run_notebook
from grading.kernels import KernelFactory
from grading.sandbox import Limits, detect

pytestmark = pytest.mark.slow
CAPS = detect()
needs_bwrap = pytest.mark.skipif(not CAPS.bubblewrap, reason="bubblewrap not available")
needs_cgroup = pytest.mark.skipif(not CAPS.cgroup, reason="no writable cgroup")


def run(factory, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(s)) for s in sources])
    kernel = factory.fresh_kernel()
    try:
        return run_notebook(nb, kernel, factory.limits)
    finally:
        factory.recycle()


def text(result, i=0):
    out = []
    for o in result.nb.cells[i].outputs:
        out.append(
            o.get("text", "") if o.get("output_type") == "stream" else f"{o.get('ename', '')}: {o.get('evalue', '')}"
        )
    return "".join(out)


@pytest.fixture(scope="module")
def factory():
    with KernelFactory(Limits(cell_seconds=20, notebook_seconds=60, memory_mb=512, cpu_seconds=30)) as f:
        yield f


def test_nothing_survives_into_the_next_kernel(factory):
    # A "student" leaves a file, a daemon that would write later, and a global.
    r = run(
        factory,
        """
        import os, time
        open("left_behind.txt", "w").write("secret")
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(1.5)
                open("daemon_was_here.txt", "w").write("x")
                os._exit(0)
            os._exit(0)
        SECRET = 42
        print("ok")
    """,
    )
    assert "ok" in text(r)
    r = run(
        factory,
        """
        import os, time
        time.sleep(2.5)
        print(sorted(os.listdir(".")), "SECRET" in globals())
    """,
    )
    assert text(r).strip() == "[] False"


@needs_bwrap
def test_no_network(factory):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        r = run(
            factory,
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
                print("CONNECTED")
            except OSError as e:
                print("blocked", type(e).__name__)
        """,
        )
    finally:
        server.close()
    assert "blocked" in text(r) and "CONNECTED" not in text(r)


@needs_bwrap
def test_course_files_and_the_host_are_invisible_and_read_only(factory, tmp_path):
    course_file = tmp_path / "source.ipynb"
    course_file.write_text("hidden tests")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = run(
        factory,
        f"""
        import os
        for p in [{str(course_file)!r}, {repo + "/source"!r}, {repo + "/tests"!r}, {repo + "/grading/mistakes"!r},
                  {repo + "/grading/grade.py"!r}, "/etc/shadow", "/home", "/var/lib"]:
            print(p.split("/")[-1], os.path.exists(p))
        for p in ["/x.txt", "/usr/x.txt", {repo + "/course_lib/x.py"!r}]:
            try:
                open(p, "w").write("x"); print("WROTE", p)
            except OSError as e:
                print("no write", type(e).__name__)
        print("uid", os.getuid())
    """,
    )
    out = text(r)
    assert "True" not in out.replace("uid", ""), out
    assert "WROTE" not in out and out.count("no write") == 3
    assert "uid 65534" in out


def test_wall_clock_limit_per_cell():
    with KernelFactory(Limits(cell_seconds=1.5, notebook_seconds=30)) as f:
        r = run(f, "import time\ntime.sleep(20)", "print('after')")
    assert r.status == "timeout" and "1.5 s" in r.detail and r.stopped_at == 0


def test_cpu_time_limit():
    with KernelFactory(Limits(cell_seconds=30, cpu_seconds=2)) as f:
        r = run(f, "while True:\n    pass")
    assert r.status == "cpu_limit", (r.status, r.detail)


@needs_cgroup
def test_memory_limit_is_a_clear_status():
    with KernelFactory(Limits(cell_seconds=30, memory_mb=300)) as f:
        r = run(
            f,
            """
            import numpy as np
            blocks = []
            for _ in range(100):
                blocks.append(np.ones(25 * 2**20 // 8))  # 25 MB each, touched
        """,
        )
    memory_error = any(o.get("ename") == "MemoryError" for o in r.nb.cells[0].outputs)
    assert r.status == "memory_limit" or memory_error, (r.status, r.detail)


def test_output_limit():
    with KernelFactory(Limits(cell_seconds=30, max_output_mb=1)) as f:
        r = run(f, "for i in range(100000):\n    print('x' * 100)")
    assert r.status == "output_limit"


@needs_cgroup
def test_process_cap_stops_fork_bombs():
    with KernelFactory(Limits(cell_seconds=30, max_processes=20)) as f:
        r = run(
            f,
            """
            import os, time
            n = 0
            for _ in range(200):
                try:
                    if os.fork() == 0:
                        time.sleep(30); os._exit(0)
                    n += 1
                except OSError:
                    break
            print("forked", n)
        """,
        )
    forked = int(text(r).split("forked")[1])
    assert forked < 20


def test_kernel_exit_is_reported():
    with KernelFactory(Limits(cell_seconds=30)) as f:
        r = run(f, "import os\nos._exit(3)", "print('unreachable')")
    assert r.status == "kernel_died" and "exit code 3" in r.detail


def test_missing_bubblewrap_is_a_warning_not_silence():
    code = "from grading.sandbox import detect; print(detect().warnings)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, COURSE_NO_BWRAP="1"),
        check=True,
    ).stdout
    assert "COURSE_NO_BWRAP" in out and "network" in out


def test_a_forked_kernel_shows_figures_like_a_fresh_one(factory):
    """No %matplotlib magic needed and no warning on stderr, exactly as in a normally started kernel."""
    r = run(factory, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()", "plt.plot([2, 1])")
    for cell in r.nb.cells:
        kinds = [o.output_type for o in cell.outputs]
        assert "stream" not in kinds, cell.outputs  # no "non-interactive backend" warning
        assert any("image/png" in o.get("data", {}) for o in cell.outputs)
