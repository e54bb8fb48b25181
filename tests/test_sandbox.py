"""The grading sandbox: isolation between students, no network, no reading the course, limits.

These run real kernels in the real sandbox. Without bubblewrap they fail with
the reason (KernelFactory refuses: SandboxUnavailable); they never skip and
never run unconfined. Only the cgroup tests skip where the machine has no
writable cgroup, which grading treats as a warning too.
"""

import errno
import os
import socket
import subprocess
import sys
import textwrap

import nbformat
import pytest

from grading.sandbox.execute import MALFORMED, run_notebook
from grading.sandbox.kernels import KernelFactory, SandboxDamaged
from grading.sandbox.layers import Limits, detect, remove_tree
from grading.verdict.grade import _stage_files

pytestmark = pytest.mark.slow
CAPS = detect()
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


def test_course_files_and_the_host_are_invisible_and_read_only(factory, tmp_path):
    course_file = tmp_path / "source.ipynb"
    course_file.write_text("hidden tests")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = run(
        factory,
        f"""
        import os
        for p in [{str(course_file)!r}, {repo + "/source"!r}, {repo + "/tests"!r}, {repo + "/grading/mistakes"!r},
                  {repo + "/grading/verdict/grade.py"!r}, "/etc/shadow", "/home", "/var/lib"]:
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


def test_a_forked_kernel_shows_figures_like_a_fresh_one(factory):
    """No %matplotlib magic needed and no warning on stderr, exactly as in a normally started kernel."""
    r = run(factory, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()", "plt.plot([2, 1])")
    for cell in r.nb.cells:
        kinds = [o.output_type for o in cell.outputs]
        assert "stream" not in kinds, cell.outputs  # no "non-interactive backend" warning
        assert any("image/png" in o.get("data", {}) for o in cell.outputs)


# ----- a fresh state for every notebook (issue 9) ------------------------------------
def test_an_unremovable_folder_does_not_survive_into_the_next_kernel(factory):
    r = run(
        factory,
        """
        import os
        os.makedirs("locked/inner")
        open("locked/inner/answers.py", "w").write("stolen = 1")
        os.chmod("locked/inner", 0o555); os.chmod("locked", 0o555)
        os.makedirs("sealed"); os.chmod("sealed", 0)
        print(sorted(os.listdir(".")))
    """,
    )
    assert text(r).strip() == "['locked', 'sealed']"
    r = run(factory, "import os\nprint(sorted(os.listdir('.')))")
    assert text(r).strip() == "[]"


def test_an_ipython_startup_file_does_not_run_in_later_kernels(factory):
    r = run(
        factory,
        """
        import os
        d = os.path.join(os.environ["IPYTHONDIR"], "profile_default", "startup")
        os.makedirs(d, exist_ok=True)  # IPython made it already
        open(os.path.join(d, "00-planted.py"), "w").write("PLANTED = 1")
        os.chmod(d, 0o555)  # IPYTHONDIR itself stays writable, or IPython would not use it
        print("planted")
    """,
    )
    assert "planted" in text(r)
    r = run(factory, "print('PLANTED' in globals())")
    assert text(r).strip() == "False"


def test_tmpdir_and_dev_shm_are_fresh_for_every_kernel(factory):
    r = run(
        factory,
        """
        import os
        open("/dev/shm/colluder", "w").write("code of the previous student")
        t = os.environ["TMPDIR"]
        open(os.path.join(t, "left.txt"), "w").write("x")
        os.makedirs(os.path.join(t, "ro/deep")); os.chmod(os.path.join(t, "ro"), 0o555)
        print("written")
    """,
    )
    assert "written" in text(r)
    r = run(
        factory,
        """
        import os
        t = os.environ["TMPDIR"]
        print(os.listdir("/dev/shm"), [n for n in os.listdir(t) if n in ("left.txt", "ro")])
    """,
    )
    assert text(r).strip() == "[] []"


def test_kernel_cannot_write_or_chmod_its_socket_folder_or_see_other_notebooks(factory):
    r = run(
        factory,
        f"""
        import os
        from ipykernel.kernelapp import IPKernelApp
        ipc = os.path.dirname(IPKernelApp.instance().ip)
        for attempt in (lambda: open(os.path.join(ipc, "k99.json"), "w"),
                        lambda: os.mkdir(os.path.join(ipc, "k2.json")),
                        lambda: os.chmod(ipc, 0o500)):
            try:
                attempt(); print("CHANGED")
            except OSError as e:
                print("refused", e.errno)
        print("host folders visible:", os.path.exists({factory.run_root!r}), os.path.exists({factory.stage_root!r}))
    """,
    )
    out = text(r)
    assert "CHANGED" not in out and out.count("refused") == 3, out
    assert "host folders visible: False False" in out
    # The host side holds nothing of it afterwards: every notebook's folders are gone.
    assert os.listdir(factory.run_root) == [] and os.listdir(factory.stage_root) == []


def test_killing_every_visible_process_harms_no_later_student(factory):
    zygote = factory.proc.pid
    r = run(
        factory,
        """
        import os, signal
        me = os.getpid()
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            if pid != me:
                for sig in (signal.SIGSTOP, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:  # ESRCH: nothing it may signal
            pass
        print("still here")
    """,
    )
    assert text(r).strip() == "still here"  # the zygote is out of its reach (and kill(-1) spares the caller)
    r = run(factory, "print(6 * 7)")
    assert r.ok and text(r).strip() == "42"
    assert factory.proc.pid == zygote and factory.proc.poll() is None  # not even rebuilt: never reached


def test_a_damaged_sandbox_is_rebuilt_before_the_next_kernel():
    with KernelFactory(Limits(cell_seconds=20)) as f:
        os.killpg(f.proc.pid, 9)  # as if something had broken it
        f.proc.wait()
        r = run(f, "print(6 * 7)")
        assert r.ok and text(r).strip() == "42"


def test_no_namespaces_mounts_ptrace_or_capabilities_for_student_code(factory):
    r = run(
        factory,
        """
        import ctypes, os, subprocess
        libc = ctypes.CDLL(None, use_errno=True)
        def tried(name, ret):
            print(name, "FAILED" if ret == -1 else "WORKED", ctypes.get_errno())
        tried("unshare-user", libc.unshare(0x10000000))
        tried("unshare-mount", libc.unshare(0x00020000))
        tried("mount", libc.mount(b"tmpfs", b"/w", b"tmpfs", 0, None))
        tried("ptrace", libc.ptrace(0, 0, None, None))
        r = subprocess.run(["unshare", "-U", "-r", "true"], capture_output=True)
        print("unshare-cmd", "WORKED" if r.returncode == 0 else "FAILED")
        print("forks", subprocess.run(["true"]).returncode == 0)
        status = dict(l.split(":", 1) for l in open("/proc/self/status"))
        print("caps", [int(status[k], 16) for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")])
        print("nnp", status["NoNewPrivs"].strip(), "seccomp", status["Seccomp"].strip())
    """,
    )
    out = text(r)
    assert "WORKED" not in out and out.count("FAILED") == 5, out
    assert "forks True" in out and "caps [0, 0, 0, 0]" in out and "nnp 1 seccomp 2" in out


def test_nothing_shared_is_writable(factory):
    """Only the kernel's own fresh places can be written; /dev, /proc/sys and the rest cannot."""
    r = run(
        factory,
        """
        import os
        rw = set()
        for line in open("/proc/self/mountinfo"):
            f = line.split()
            if "rw" in f[5].split(",") and not f[4].startswith("/proc"):
                rw.add(f[4])
        print(sorted(rw))
        for attempt in (lambda: os.utime("/dev/null"), lambda: open("/dev/planted", "w"),
                        lambda: open("/proc/sys/kernel/domainname", "w").write("x"),
                        lambda: open("/proc/sysrq-trigger", "w").write("h")):
            try:
                attempt(); print("CHANGED")
            except OSError:
                print("refused")
    """,
    )
    out = text(r)
    assert out.splitlines()[0] == str(sorted(["/w", "/t", "/dev/shm"])), out
    assert "CHANGED" not in out and out.count("refused") == 4, out


def test_the_working_copy_has_a_quota_and_stays_off_the_host_disk(factory):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                textwrap.dedent(
                    """
                    import os
                    block, written = b"x" * 2**20, 0
                    try:
                        for i in range(8):  # 8 x 50 MB = 400 MB, each file under the per-file limit
                            with open(f"big{i}", "wb") as f:
                                for _ in range(50):
                                    f.write(block); written += 1
                        print("wrote all", written)
                    except OSError as e:
                        print("stopped", e.errno, written)
                    """
                )
            )
        ]
    )
    kernel = factory.fresh_kernel()
    try:
        r = run_notebook(nb, kernel, factory.limits)
        host = subprocess.run(["du", "-sm", "-P", factory.root], capture_output=True, text=True).stdout.split()[0]
    finally:
        factory.recycle()
    out = text(r).split()
    assert out[0] == "stopped" and int(out[1]) == errno.ENOSPC, out
    assert int(out[2]) <= factory.limits.workdir_mb
    assert int(host) < 5  # megabytes of the kernel's data in the host's folders: none


# ----- the host side: never through a path student code could shape ------------------
def test_staging_refuses_a_planted_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.py").write_text("untouched")
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "sub").symlink_to(outside)  # a folder link, as a previous kernel might have left
    (stage / "victim.py").symlink_to(outside / "victim.py")
    extra = tmp_path / "helper.py"
    extra.write_text("print('student file')")
    with pytest.raises(SandboxDamaged):
        _stage_files(str(stage), [("sub/victim.py", str(extra))], [])
    # The week's files replace what is there: the link itself, never its target.
    _stage_files(str(stage), [], [("victim.py", b"week file")])
    assert (stage / "victim.py").read_bytes() == b"week file" and not (stage / "victim.py").is_symlink()
    assert sorted(p.name for p in outside.iterdir()) == ["victim.py"]
    assert (outside / "victim.py").read_text() == "untouched"


def test_a_symlinked_submission_file_is_not_staged(tmp_path):
    """The client reads a submission's extra files without following links: a link's target never travels."""
    from grading.collect.validate import read_submission

    secret = tmp_path / "secret.txt"
    secret.write_text("instructor only")
    folder = tmp_path / "alice" / "week"
    folder.mkdir(parents=True)
    (folder / "week.ipynb").write_text("{}")
    (folder / "data.txt").symlink_to(secret)
    (folder / "notes.txt").write_text("mine")
    sub = read_submission(folder, "alice", "week", ["week"])
    assert [rel for rel, _ in sub.extra_files] == ["notes.txt"]
    assert all(b"instructor only" not in data for _, data in sub.extra_files)
    stage = tmp_path / "stage"
    stage.mkdir()
    _stage_files(str(stage), sub.extra_files, [])
    assert sorted(p.name for p in stage.iterdir()) == ["notes.txt"]


def test_files_nested_too_deep_are_noted_not_silently_dropped(tmp_path):
    from grading.collect.validate import read_submission

    folder = tmp_path / "alice" / "week"
    (folder / "a" / "b" / "c" / "d" / "e").mkdir(parents=True)
    (folder / "week.ipynb").write_text("{}")
    (folder / "a" / "b" / "c" / "d" / "kept.txt").write_text("four folders down")
    (folder / "a" / "b" / "c" / "d" / "e" / "deep.txt").write_text("five folders down")
    sub = read_submission(folder, "alice", "week", ["week"])
    assert [rel for rel, _ in sub.extra_files] == ["a/b/c/d/kept.txt"]
    assert sub.notes == ["folder a/b/c/d/e/ is nested more than 4 folders deep: nothing in it was read"]


def test_host_side_removal_handles_locked_folders_and_never_follows_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f.txt").write_text("x")
    (tree / "a" / "link").symlink_to(outside)
    (tree / "a" / "b").chmod(0o555)
    (tree / "a").chmod(0)
    remove_tree(tree)
    assert not tree.exists() and (outside / "keep.txt").read_text() == "keep"


# ----- fail closed ------------------------------------------------------------------------
def _factory_in_subprocess(env, unconfined):
    code = textwrap.dedent(
        f"""
        from grading.sandbox.kernels import KernelFactory, SandboxUnavailable
        from grading.sandbox.layers import Limits
        try:
            with KernelFactory(Limits(cell_seconds=20), unconfined={unconfined}) as f:
                k = f.fresh_kernel()
                print("kernel started", f.use_bwrap)
        except SandboxUnavailable as e:
            print("REFUSED", e)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    ).stdout


def test_without_bubblewrap_grading_refuses_with_the_fix_in_one_line():
    out = _factory_in_subprocess(dict(os.environ, COURSE_NO_BWRAP="1"), unconfined=False)
    assert out.startswith("REFUSED") and out.count("\n") == 1 and "COURSE_NO_BWRAP" in out, out
    venv_only = dict(os.environ, PATH=os.path.dirname(sys.executable))
    out = _factory_in_subprocess(venv_only, unconfined=False)
    assert out.startswith("REFUSED") and "apt-get install bubblewrap" in out and out.count("\n") == 1, out
    with pytest.raises(Exception, match="unconfined"):
        KernelFactory(Limits(), sandbox=False)  # no silent downgrade either


def test_unconfined_is_an_explicit_opt_out():
    out = _factory_in_subprocess(dict(os.environ, COURSE_NO_BWRAP="1"), unconfined=True)
    assert out.strip() == "kernel started False", out


def test_the_fork_server_never_remounts_the_hosts_dev():
    """Run on the host by mistake (say, as root in a test), it refuses before touching any mount."""
    from grading.sandbox.zygote import Damaged, Zygote

    before = open("/proc/self/mountinfo").read()
    with pytest.raises(Damaged, match="not inside its sandbox"):
        Zygote({"isolated": True}).setup()
    assert open("/proc/self/mountinfo").read() == before


# ----- a hostile kernel against the grader's process ----------------------------------------
def test_a_real_time_signal_is_a_death_not_a_grader_crash():
    """Python has no name for signal 40: the kernel died from "signal 40", and the student is scored."""
    with KernelFactory(Limits(cell_seconds=30)) as f:
        r = run(f, "import os, time\nos.kill(os.getpid(), 40)\ntime.sleep(5)")
    assert r.status == "kernel_died" and r.detail == "the kernel died from signal 40", (r.status, r.detail)


def test_io_uring_is_refused(factory):
    """io_uring runs system calls from a kernel thread, out of the seccomp filter's sight."""
    r = run(
        factory,
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        fd = libc.syscall(425, 4, params)  # io_uring_setup(4 entries)
        print("io_uring", "WORKED" if fd >= 0 else f"FAILED {ctypes.get_errno()}")
        print("enter", libc.syscall(426, 0, 0, 0, 0, None, 0), ctypes.get_errno())
        """,
    )
    assert text(r).split() == ["io_uring", "FAILED", str(errno.EPERM), "enter", "-1", str(errno.EPERM)], text(r)


def _process_tree(root):
    """{host pid: [its pids, outermost namespace first]} for ``root`` and its descendants."""
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
            children = open(f"/proc/{pid}/task/{pid}/children").read().split()
        except OSError:
            continue
        tree[pid] = [int(p) for p in status["NSpid"].split()]
        todo += [int(c) for c in children]
    return tree


def _holders(pids, targets):
    found = set()
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if targets & set(links):
            found.add(pid)
    return found


def test_the_kernels_init_holds_no_pipe_of_the_fork_servers_protocol(factory):
    """Anything in the kernel's namespace can try /proc/1/fd/N: no process started for a notebook
    (the kernel, its init, the namespace's parent) holds the fork server's protocol pipes."""
    kernel = factory.fresh_kernel()
    try:
        protocol = {f"pipe:[{os.fstat(s.fileno()).st_ino}]" for s in (factory.proc.stdin, factory.proc.stdout)}
        tree = _process_tree(factory.proc.pid)
        per_notebook = {pid for pid, ns in tree.items() if len(ns) > 2 or ns[-1] == kernel.pid}
        assert len(per_notebook) >= 3, tree  # the namespace's parent, the init and the kernel
        assert not _holders(per_notebook, protocol), (tree, protocol)
        assert _holders(tree, protocol), "the fork server's own pipes were not found: the test sees nothing"
    finally:
        factory.recycle()


def test_a_malformed_message_ends_the_run_without_quoting_it(factory):
    """A forged signature, or an output nbformat rejects: a fixed status, none of the kernel's text."""
    sender = """
        k = get_ipython().kernel
        def send(frames):
            k.iopub_socket.send_multipart([b"kernel.x.status", b"<IDS|MSG>", *frames])
        """
    bad_signature = "send([b'SIG' + b'SEC' + b'RET-1', b'{}', b'{}', b'{}', b'{}'])\nimport time; time.sleep(1)"
    bad_output = (
        "k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': {'x': 'SEC' + 'RET-2'}},"
        " parent=k.get_parent('shell'))\nimport time; time.sleep(1)"
    )
    for attack in (bad_signature, bad_output):
        r = run(factory, sender, attack, "print('not reached')")
        assert (r.status, r.detail, r.stopped_at) == ("malformed_message", MALFORMED, 1), (r.status, r.detail)
        assert "SECRET" not in repr(r.nb), r.nb


FLOOD = """
import hashlib, hmac, json, threading, time, uuid
k = get_ipython().kernel
blob = bytes({mb} * 2**20)
def frames():
    header = json.dumps({{"msg_id": uuid.uuid4().hex, "msg_type": "comm_info_reply", "session": k.session.session,
                         "username": "x", "date": "2026-01-01T00:00:00Z", "version": "5.3"}}).encode()
    h = hmac.new(k.session.key, digestmod=hashlib.sha256)
    for f in (header, b"{{}}", b"{{}}", b"{{}}"):
        h.update(f)
    ident = k._parent_ident["shell"]
    return [*(ident if isinstance(ident, list) else [ident]), b"<IDS|MSG>", h.hexdigest().encode(), header,
            b"{{}}", b"{{}}", b"{{}}", blob]
done = threading.Event()
def send_all():
    for _ in range({n}):
        k.shell_stream.socket.send_multipart(frames(), copy=False)  # one buffer, no copies: cheap for the kernel
    done.set()
k.shell_stream.io_loop.add_callback(send_all)
done.wait(15)
time.sleep(2)  # while the grader waits for this cell, its ZeroMQ thread receives whatever it accepts
print("sent", done.is_set())
"""


@pytest.mark.parametrize("mb", [60, 4])
def test_a_shell_flood_cannot_grow_the_graders_memory(mb):
    """Signed replies the grader never asked for, on the socket it does not read while a cell runs."""
    code = textwrap.dedent(
        f"""
        import nbformat
        from grading.sandbox.execute import run_notebook
        from grading.sandbox.kernels import KernelFactory
        from grading.sandbox.layers import Limits
        def peak_mb():  # VmHWM: this process's own peak (ru_maxrss would carry over the parent's across exec)
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell({FLOOD.format(mb=mb, n=50)!r})])
        with KernelFactory(Limits(cell_seconds=30, max_output_mb=5)) as f:
            before = peak_mb()
            r = run_notebook(nb, f.fresh_kernel(), f.limits)
            print(r.status, before, peak_mb())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True).stdout
    status, before, peak = out.split()
    assert status == "output_limit", out  # 60 MB: a frame over the cap (the connection is dropped); 4 MB: the budget
    assert int(peak) < 600 and int(peak) - int(before) < 250, f"grader grew from {before} to {peak} MB"
