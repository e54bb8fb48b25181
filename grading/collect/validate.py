"""Read a submission folder without trusting anything in it.

Each problem becomes a clear, per-submission reason; nothing here modifies
the submitted files or follows a symbolic link.
"""

import json
import os
import re
import stat
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from ..sandbox.layers import read_regular

MAX_NOTEBOOK_BYTES = 100 * 2**20
MAX_EXTRA_BYTES = 50 * 2**20
MAX_EXTRA_FILES = 500
MAX_FOLDER_DEPTH = 4  # folders inside a submission that are read; a deeper one is noted, not read
# A real notebook nests about 10 levels (cells, outputs, data, widget state); 64 leaves room
# for JSON outputs and stays far below Python's recursion limit in every later step.
MAX_JSON_DEPTH = 64
# Parsing and rebuilding cost memory and time per JSON value and per cell, before any time limit
# runs: 1 MB of empty cells ("{},") took 108 s and 1.2 GB, and 30 MB of "{}," parses to 1 GB. The
# weeks have about 100 cells and 3,000 values; a run notebook's outputs add far fewer than these.
MAX_CELLS = 2_000
MAX_JSON_VALUES = 1_000_000
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS_ONLY = re.compile(r"[^\[\]{}]+")
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}


@dataclass
class NotebookFile:
    expected: str  # notebook name the week expects (without .ipynb)
    path: Path | None = None  # what we grade for it, if anything
    nb: dict | None = None  # parsed JSON
    problem: str | None = None  # why it cannot be graded
    raw: bytes | None = None  # the file as read (read_submission), parsed where it is graded (parse_notebooks)


@dataclass
class Submission:
    student: str
    week: str
    folder: Path
    notebooks: dict = field(default_factory=dict)  # expected name -> NotebookFile
    extra_files: list = field(default_factory=list)  # (relative path, absolute path), or bytes (read_submission)
    notes: list = field(default_factory=list)

    @property
    def gradeable(self):
        return any(n.nb is not None for n in self.notebooks.values())


def read_notebook(path):
    """Parse a notebook file defensively: (dict, None) or (None, reason)."""
    raw, problem = read_notebook_bytes(path)
    return (None, problem) if problem else parse_notebook(raw)


def read_notebook_bytes(path):
    """The bytes of a notebook file, never through a link and within the size limit: (bytes, None) or (None, reason)."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return None, f"cannot read the file ({e.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return None, "the notebook is a symbolic link; submit the file itself"
    if not stat.S_ISREG(st.st_mode):
        return None, "the notebook is not a regular file"
    if st.st_size == 0:
        return None, "the notebook file is empty"
    if st.st_size > MAX_NOTEBOOK_BYTES:
        return (
            None,
            f"the notebook is {st.st_size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit "
            "(clear its outputs and resubmit)",
        )
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_NOTEBOOK_BYTES + 1), None


def parse_notebook(raw):
    """Parse a notebook's bytes defensively: (dict, None) or (None, reason)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not a notebook: the file is not UTF-8 text (a binary file?)"
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        return None, f"not a notebook: its JSON is nested {depth} levels deep (at most {MAX_JSON_DEPTH} allowed)"
    values = json_values(text)
    if values > MAX_JSON_VALUES:
        return None, (
            f"not a notebook: its JSON holds about {values} values (at most {MAX_JSON_VALUES} allowed; "
            "clear its outputs and resubmit)"
        )
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"not a notebook: invalid JSON at line {e.lineno}, column {e.colno} ({e.msg})"
    except RecursionError:
        return None, f"not a notebook: its JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels allowed)"
    if not isinstance(nb, dict):
        return None, "not a notebook: the JSON is not an object"
    major = nb.get("nbformat")
    if major != 4:
        found = f"nbformat {major}" if isinstance(major, int) else "no nbformat version"
        return None, f"unsupported notebook format: {found}; expected nbformat 4 (save it with Jupyter 4 or newer)"
    if not isinstance(nb.get("cells"), list):
        return None, "not a notebook: no list of cells"
    if not all(isinstance(c, dict) for c in nb["cells"]):
        return None, "not a notebook: a cell is not an object"
    if len(nb["cells"]) > MAX_CELLS:
        return None, f"the notebook has {len(nb['cells'])} cells, over the limit of {MAX_CELLS}"
    return nb, None


def json_depth(text):
    """How deeply the arrays and objects of JSON ``text`` nest, without parsing it.

    Checked before parsing: every later step (nbformat, copies, the JSON writer)
    recurses once per level, so a few hundred levels would crash the grader.
    """
    structure = _BRACKETS_ONLY.sub("", _STRINGS.sub('""', text))  # brackets inside strings do not count
    return max(accumulate(_DELTA[c] for c in structure), default=0)


def json_values(text):
    """About how many values (objects, arrays, strings, numbers...) JSON ``text`` holds, without parsing it."""
    structure = _STRINGS.sub('""', text)
    return structure.count(",") + structure.count("[") + structure.count("{") + 1


def read_submission(folder, student, week, expected_names):
    """``inspect`` without parsing, every file read now: all a grading worker needs, as bytes.

    The client reads (no link followed, the same limits); the worker parses
    (parse_notebooks), so a worker needs no path on the course machine.
    """
    sub = inspect(folder, student, week, expected_names, parse=False)
    sub.extra_files = [(rel, data) for rel, full in sub.extra_files if (data := read_regular(full)) is not None]
    return sub


def parse_notebooks(sub):
    """Parse the notebooks ``read_submission`` read (each one's nb or problem, as ``inspect`` gives them)."""
    for nf in sub.notebooks.values():
        if nf.raw is not None:
            nf.nb, nf.problem = parse_notebook(nf.raw)
            nf.raw = None
    return sub


def inspect(folder, student, week, expected_names, parse=True):
    """Look at ``folder`` (a student's submission for ``week``) and decide what to grade.

    ``parse=False`` keeps each notebook's bytes (``raw``) instead of parsing them.
    """
    folder = Path(folder)
    sub = Submission(student, week, folder)
    notebooks, others = {}, []
    for rel, full, kind in _walk(folder, sub.notes):
        if kind == "file" and rel.endswith(".ipynb") and "/" not in rel:
            notebooks[rel[:-6]] = full
        elif kind == "file":
            others.append((rel, full))
        elif kind == "link" and rel.endswith(".ipynb"):
            notebooks[rel[:-6]] = full  # read_notebook refuses it with a clear reason
    unclaimed = [n for n in notebooks if n not in expected_names]
    for name in expected_names:
        nf = NotebookFile(name)
        sub.notebooks[name] = nf
        path = notebooks.get(name)
        if path is None and len(expected_names) == 1 and len(unclaimed) == 1:
            path = notebooks[unclaimed[0]]
            sub.notes.append(f"{unclaimed[0]}.ipynb was graded as {name}.ipynb (the notebook was renamed)")
            unclaimed = []
        if path is None:
            nf.problem = f"{name}.ipynb is missing from the submission"
            continue
        nf.path = path
        if parse:
            nf.nb, nf.problem = read_notebook(path)
        else:
            nf.raw, nf.problem = read_notebook_bytes(path)
    for extra in unclaimed:
        sub.notes.append(f"extra notebook {extra}.ipynb was not graded")
    total = 0
    for rel, full in others:
        # nbgrader's bookkeeping, not the student's work: the kernel never needs it, and the
        # per-student secret would make every blank release look different to the cache.
        if rel in ("timestamp.txt", "submission_secret.txt") or rel.startswith(".ipynb_checkpoints/"):
            continue
        size = os.lstat(full).st_size
        if len(sub.extra_files) >= MAX_EXTRA_FILES or total + size > MAX_EXTRA_BYTES:
            sub.notes.append(
                f"{rel} and further files were not copied "
                f"(over {MAX_EXTRA_FILES} files or {MAX_EXTRA_BYTES // 2**20} MB)"
            )
            break
        total += size
        sub.extra_files.append((rel, full))
    return sub


def _walk(folder, notes, depth=0, prefix=""):
    """Yield (relative path, path, kind) without following symbolic links (not even ``folder``)."""
    if depth == 0 and os.path.islink(folder):
        notes.append("the submission folder is a symbolic link: nothing in it was read")
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        notes.append(f"cannot list {prefix or '.'}: {e.strerror}")
        return
    for entry in entries:
        rel = prefix + entry.name
        if not entry.name.isprintable():
            notes.append(f"a file with an unprintable name was ignored ({entry.name!r})")
            continue
        if entry.is_symlink():
            target = os.readlink(entry.path)
            inside = os.path.realpath(entry.path).startswith(os.path.realpath(folder) + os.sep)
            where = "inside" if inside else "outside"
            notes.append(f"symbolic link {rel} -> {target} ({where} the submission) was ignored")
            yield rel, Path(entry.path), "link"
        elif entry.is_dir(follow_symlinks=False):
            if depth < MAX_FOLDER_DEPTH:
                yield from _walk(entry.path, notes, depth + 1, rel + "/")
            else:
                deep = f"is nested more than {MAX_FOLDER_DEPTH} folders deep"
                notes.append(f"folder {rel}/ {deep}: nothing in it was read")
        elif entry.is_file(follow_symlinks=False):
            yield rel, Path(entry.path), "file"
