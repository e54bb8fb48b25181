"""Run a notebook's code cells in a kernel, with limits, and collect the outputs.

Like nbclient, but it stops on a limit instead of hanging: a cell that runs
past its time, a notebook past its total time, output past its byte budget,
or a kernel that dies (sys.exit, os._exit, a memory or CPU limit) ends the
run with a status that says which. Outputs are built with
``nbformat.v4.output_from_msg``, so the result is an ordinary notebook.
"""

import time
from dataclasses import dataclass, field

import nbformat
import zmq
from nbformat.v4 import output_from_msg
from zmq.utils.monitor import recv_monitor_message

OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}
MAX_FRAME = 8 * 2**20  # one ZeroMQ frame; the weeks' biggest message (a PNG) is under 0.4 MB
MALFORMED = "the kernel sent a malformed message"


@dataclass
class RunResult:
    nb: nbformat.NotebookNode
    status: str = "ok"  # ok | timeout | notebook_timeout | output_limit | malformed_message | <kernel death>
    detail: str = ""
    stopped_at: int | None = None  # index of the cell during which the run ended
    seconds: float = 0.0  # wall time spent executing cells
    cell_seconds: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.status == "ok"


class OutputBudget:
    """What a notebook's kernel may still send: bytes and messages, for the whole run.

    Every message counts, whole (every frame as received: header, metadata, content,
    buffers) and whatever its channel, parent or type: empty outputs with huge metadata,
    display updates, clear_output, comm traffic and unsolicited shell replies too, so
    nothing a kernel sends is free. Bytes are charged before anything decodes them.
    """

    def __init__(self, limits):
        self.bytes = limits.max_output_mb * 2**20
        self.messages = getattr(limits, "max_outputs", 10_000)

    def charge(self, nbytes):
        """Count one message of ``nbytes`` bytes; return why the run must stop ("" while within the budget)."""
        self.messages -= 1
        if self.messages < 0:
            return "the notebook sent more outputs than allowed"
        self.bytes -= nbytes
        if self.bytes < 0:
            return "the notebook printed more output than allowed"
        return ""


def frame_limit(limits):
    """The largest ZeroMQ frame the grader accepts from a kernel (ZMQ_MAXMSGSIZE): no bigger than the budget."""
    return max(1, int(min(limits.max_output_mb * 2**20, MAX_FRAME)))


MAX_NESTING = 64  # JSON levels in one message; deeper data is refused before anything parses it again


def message_size(msg, limit=float("inf")):
    """About how many bytes ``msg`` takes as JSON (buffers by length); None if nested too deep.

    Iterative, so no nesting can exhaust the stack, and it stops counting once past ``limit``.
    """
    total, stack = 0, [(msg, 0)]
    while stack and total <= limit:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            return None
        if isinstance(value, str):
            total += len(value) + 2
        elif isinstance(value, (bytes, bytearray, memoryview)):
            total += value.nbytes if isinstance(value, memoryview) else len(value)
        elif isinstance(value, dict):
            total += 2
            for k, v in value.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
                total += 2
        elif isinstance(value, (list, tuple)):
            total += 2 + len(value)
            stack.extend((v, depth + 1) for v in value)
        else:
            total += 8  # numbers, booleans, null, dates
    return total


def run_notebook(nb, kernel, limits):
    """Execute every code cell of ``nb`` (in place) in ``kernel``; return a RunResult."""
    result = RunResult(nb)
    wire = _Wire(kernel, OutputBudget(limits), frame_limit(limits))
    start = time.monotonic()
    notebook_deadline = start + limits.notebook_seconds
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            cell.execution_count = None
            if not cell.source.strip():
                continue
            t0 = time.monotonic()
            deadline = min(t0 + limits.cell_seconds, notebook_deadline)
            status, detail = _run_cell(cell, wire, deadline)
            result.cell_seconds[index] = time.monotonic() - t0
            if status != "ok":
                if status == "timeout" and deadline == notebook_deadline:
                    status, detail = "notebook_timeout", f"the notebook ran past {limits.notebook_seconds:g} s"
                elif status == "timeout":
                    detail = f"cell {index} ran past {limits.cell_seconds:g} s"
                result.status, result.detail, result.stopped_at = status, detail, index
                break
    finally:
        wire.close()
    result.seconds = time.monotonic() - start
    return result


class _Stop(Exception):
    """The run must end: ``status`` and ``detail`` say why (both composed here, never the kernel's text)."""

    def __init__(self, status, detail):
        super().__init__(status)
        self.status, self.detail = status, detail


class _Wire:
    """The kernel's shell and IOPub sockets, read as raw frames.

    Every message is charged to the budget as received, before anything decodes it, and
    decoded here so that nothing the kernel sends can raise into the grader: a bad or
    replayed signature, bad JSON, a message of the wrong shape, or a connection ZeroMQ
    dropped (a frame over ZMQ_MAXMSGSIZE, or bytes that are not ZeroMQ's protocol) ends
    the run as the kernel's fault.
    """

    def __init__(self, kernel, budget, max_frame):
        self.kernel, self.budget, self.max_frame = kernel, budget, max_frame
        self.client = kernel.client
        self.session = self.client.session
        self.shell = self.client.shell_channel.socket
        self.iopub = self.client.iopub_channel.socket
        self.monitors = [s.get_monitor_socket(zmq.EVENT_DISCONNECTED) for s in (self.shell, self.iopub)]
        self.poller = zmq.Poller()
        for sock in (self.shell, self.iopub, *self.monitors):
            self.poller.register(sock, zmq.POLLIN)
        self.last_alive_check = time.monotonic()

    def close(self):
        for sock in (self.shell, self.iopub):
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
        for monitor in self.monitors:
            monitor.close(linger=0)

    def execute(self, code):
        return self.client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)

    def poll(self, deadline):
        """[(channel, message)] received before ``deadline`` (maybe none); raises _Stop."""
        ready = dict(self.poller.poll(int(1000 * min(0.2, max(0.0, deadline - time.monotonic())))))
        if any(m in ready for m in self.monitors):
            self._disconnected()
        got = [
            (name, self._receive(sock))
            for name, sock in (("iopub", self.iopub), ("shell", self.shell))
            if sock in ready
        ]
        if not got and time.monotonic() - self.last_alive_check > 0.5:
            self.last_alive_check = time.monotonic()
            if not self.kernel.alive():
                raise _Stop(*self.kernel.death_reason())
        return got

    def _disconnected(self):
        """ZeroMQ dropped the connection: the kernel died, or sent what the grader refuses to receive."""
        for monitor in self.monitors:
            while monitor.poll(0):
                recv_monitor_message(monitor)
        for _ in range(10):  # a dying kernel closes its sockets just before it is reaped
            if not self.kernel.alive():
                raise _Stop(*self.kernel.death_reason())
            time.sleep(0.05)
        mb = self.max_frame / 2**20
        why = f"the notebook sent more output than allowed (one output over {mb:.3g} MB, or not a message)"
        raise _Stop("output_limit", why)

    def _receive(self, sock):
        frames = sock.recv_multipart(copy=False)
        over = self.budget.charge(sum(len(f) for f in frames))  # before anything else looks at it
        if over:
            raise _Stop("output_limit", over)
        try:
            msg = _decode(self.session, frames)
        except Exception:  # noqa: BLE001 - whatever the kernel forged, its text never reaches the grader
            raise _Stop("malformed_message", MALFORMED) from None
        if message_size(msg) is None:
            raise _Stop("output_limit", f"the notebook sent an output nested more than {MAX_NESTING} levels deep")
        return msg


def _decode(session, frames):
    """A signed Jupyter message of the expected shape, or an exception."""
    _, signed = session.feed_identities(frames, copy=False)
    msg = session.deserialize(signed, content=True, copy=False)
    for key in ("header", "parent_header", "metadata", "content"):
        if type(msg.get(key)) is not dict:
            raise ValueError(key)
    if type(msg.get("msg_type")) is not str:
        raise ValueError("msg_type")
    return msg


def _run_cell(cell, wire, deadline):
    try:
        return _run_cell_on(cell, wire, deadline)
    except _Stop as stop:
        return stop.status, stop.detail


def _run_cell_on(cell, wire, deadline):
    msg_id = wire.execute(cell.source)
    outputs = cell.outputs
    clear_pending = idle = replied = False
    reply_deadline = deadline
    while not (idle and replied):
        if time.monotonic() > reply_deadline:
            if idle:  # the reply is late, the outputs are complete: go on
                break
            return "timeout", ""
        for channel, msg in wire.poll(reply_deadline):
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if channel == "shell":
                replied = True  # collected, so the next cell starts clean
                continue
            if idle:
                continue
            mtype, content = msg["msg_type"], msg["content"]
            if mtype == "status" and content.get("execution_state") == "idle":
                idle = True
                reply_deadline = min(deadline, time.monotonic() + 5.0)
            elif mtype == "execute_input":
                count = content.get("execution_count")
                cell.execution_count = count if type(count) is int else None  # the kernel's to fill
            elif mtype == "clear_output":
                if content.get("wait"):
                    clear_pending = True
                else:
                    outputs.clear()
            elif mtype in OUTPUT_TYPES:
                if clear_pending:
                    outputs.clear()
                    clear_pending = False
                _append(outputs, _output(msg))
    return "ok", ""


def _output(msg):
    try:
        return output_from_msg(msg)
    except Exception:  # noqa: BLE001 - nbformat's ValidationError quotes the kernel's content
        raise _Stop("malformed_message", MALFORMED) from None


def _append(outputs, out):
    if (
        out.output_type == "stream"
        and outputs
        and outputs[-1].get("output_type") == "stream"
        and outputs[-1].get("name") == out.name
    ):
        outputs[-1].text += out.text  # merge consecutive prints, as nbclient does
    else:
        outputs.append(out)
