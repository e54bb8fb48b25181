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


def run_notebook(nb, kernel, limits):
    """Execute every code cell of ``nb`` (in place) in ``kernel``; return a RunResult."""
    result = RunResult(nb)
    budget = limits.max_output_mb * 2**20
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
        status, detail, used = _run_cell(cell, kernel, deadline, budget)
        budget -= used
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
    used = 0
    clear_pending = False
    idle = False
    last_alive_check = time.monotonic()
    while not idle:
        now = time.monotonic()
        if now > deadline:
            return "timeout", "", used
        try:
            msg = client.get_iopub_msg(timeout=min(0.2, max(0.0, deadline - now)))
        except queue.Empty:
            if time.monotonic() - last_alive_check > 0.5:
                last_alive_check = time.monotonic()
                if not kernel.alive():
                    return (*kernel.death_reason(), used)
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        mtype, content = msg["msg_type"], msg["content"]
        if mtype == "status" and content.get("execution_state") == "idle":
            idle = True
        elif mtype == "execute_input":
            cell.execution_count = content.get("execution_count")
        elif mtype == "clear_output":
            if content.get("wait"):
                clear_pending = True
            else:
                outputs.clear()
        elif mtype in OUTPUT_TYPES:
            size = _size(content)
            used += size
            if used > budget:
                return "output_limit", "the notebook printed more output than allowed", used
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
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    except queue.Empty:
        pass
    return "ok", "", used


def _size(content):
    total = 0
    for key in ("text", "ename", "evalue"):
        v = content.get(key)
        if isinstance(v, str):
            total += len(v)
    for v in (content.get("data") or {}).values():
        total += len(v) if isinstance(v, str) else len(str(v))
    for line in content.get("traceback") or []:
        total += len(line) if isinstance(line, str) else 0
    return total
