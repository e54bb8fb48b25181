"""Run a notebook's code cells in a kernel, with limits, and collect the outputs.

Like nbclient, but it stops on a limit instead of hanging: a cell that runs
past its time, a notebook past its total time, output past its byte budget,
or a kernel that dies (sys.exit, os._exit, a memory or CPU limit) ends the
run with a status that says which. Outputs are built with
``nbformat.v4.output_from_msg``, so the result is an ordinary notebook.
"""

import queue
import time
from dataclasses import dataclass, field

import nbformat
from nbformat.v4 import output_from_msg

OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}


@dataclass
class RunResult:
    nb: nbformat.NotebookNode
    status: str = "ok"  # ok | timeout | notebook_timeout | output_limit | <kernel death kind>
    detail: str = ""
    stopped_at: int | None = None  # index of the cell during which the run ended
    seconds: float = 0.0  # wall time spent executing cells
    cell_seconds: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.status == "ok"


class OutputBudget:
    """What a notebook's kernel may still send: bytes and messages, for the whole run.

    Every message counts, whole (header, metadata, content, buffers) and whatever its
    parent or type: empty outputs with huge metadata, display updates, clear_output
    and comm traffic too, so nothing a kernel sends is free.
    """

    def __init__(self, limits):
        self.bytes = limits.max_output_mb * 2**20
        self.messages = getattr(limits, "max_outputs", 10_000)

    def charge(self, msg):
        """Count ``msg``; return why the run must stop ("" while within the budget)."""
        self.messages -= 1
        if self.messages < 0:
            return "the notebook sent more outputs than allowed"
        size = message_size(msg, limit=max(self.bytes, 0) + 1)
        if size is None:
            return f"the notebook sent an output nested more than {MAX_NESTING} levels deep"
        self.bytes -= size
        if self.bytes < 0:
            return "the notebook printed more output than allowed"
        return ""


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
    budget = OutputBudget(limits)
    start = time.monotonic()
    notebook_deadline = start + limits.notebook_seconds
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        if not cell.source.strip():
            continue
        t0 = time.monotonic()
        deadline = min(t0 + limits.cell_seconds, notebook_deadline)
        status, detail = _run_cell(cell, kernel, deadline, budget)
        result.cell_seconds[index] = time.monotonic() - t0
        if status != "ok":
            if status == "timeout" and deadline == notebook_deadline:
                status, detail = "notebook_timeout", f"the notebook ran past {limits.notebook_seconds:g} s"
            elif status == "timeout":
                detail = f"cell {index} ran past {limits.cell_seconds:g} s"
            result.status, result.detail, result.stopped_at = status, detail, index
            break
    result.seconds = time.monotonic() - start
    return result


def _run_cell(cell, kernel, deadline, budget):
    client = kernel.client
    msg_id = client.execute(cell.source, store_history=True, allow_stdin=False, stop_on_error=False)
    outputs = cell.outputs
    clear_pending = False
    idle = False
    last_alive_check = time.monotonic()
    while not idle:
        now = time.monotonic()
        if now > deadline:
            return "timeout", ""
        try:
            msg = client.get_iopub_msg(timeout=min(0.2, max(0.0, deadline - now)))
        except queue.Empty:
            if time.monotonic() - last_alive_check > 0.5:
                last_alive_check = time.monotonic()
                if not kernel.alive():
                    return kernel.death_reason()
            continue
        over = budget.charge(msg)  # before anything else looks at it
        if over:
            return "output_limit", over
        if not isinstance(msg.get("parent_header"), dict) or msg["parent_header"].get("msg_id") != msg_id:
            continue
        mtype, content = msg["msg_type"], msg["content"]
        if mtype == "status" and content.get("execution_state") == "idle":
            idle = True
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
            out = output_from_msg(msg)
            if (
                out.output_type == "stream"
                and outputs
                and outputs[-1].get("output_type") == "stream"
                and outputs[-1].get("name") == out.name
            ):
                outputs[-1].text += out.text  # merge consecutive prints, as nbclient does
            else:
                outputs.append(out)
    # The shell reply comes after idle; collect it so the next cell starts clean.
    try:
        while True:
            reply = client.get_shell_msg(timeout=max(0.05, min(5.0, deadline - time.monotonic())))
            over = budget.charge(reply)  # a reply's payload is the kernel's to fill, too
            if over:
                return "output_limit", over
            if isinstance(reply.get("parent_header"), dict) and reply["parent_header"].get("msg_id") == msg_id:
                break
    except queue.Empty:
        pass
    return "ok", ""
