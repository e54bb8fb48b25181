"""The student's working copy: work/<week>/, filled from the released notebooks, never overwritten.

Course commands (``course release``, ``make release``, ``make demo``, formgrader's
Generate) and ``git pull`` rewrite the released notebooks. Students therefore work
in a git-ignored ``work/`` folder that ``make lab`` fills on first use:

* a file that is not in ``work/<week>/`` yet is copied there;
* a file that is already there is never touched, not even when it is unchanged;
* when the released file differs from the one the student's copy was made from
  (recorded as ``work/.course/<week>/<file>.sha256``), the new release is put
  *beside* it as ``<name>.updated-YYYY-MM-DD<suffix>``, with a printed notice.

This module uses the standard library only: the student edition ships a copy of
it next to its start script (it cannot import the instructor's package).
"""

import datetime
import hashlib
import os
import re
import sys
from pathlib import Path

WEEK = re.compile(r"^week\d+_[a-z0-9_]+$")
RECORDS = ".course"  # inside work/: what each copy was made from (hidden in JupyterLab's file browser)


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _create(path, data):
    """Write a new file; fails (FileExistsError) rather than replace anything, even through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _record(record, digest):
    """Remember which release a copy was made from (our own bookkeeping: replaced atomically)."""
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(record.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.write_text(digest + "\n")
    os.replace(tmp, record)


def _beside(target, data, today):
    """Put ``data`` next to ``target`` under a dated name that is free (or already holds it)."""
    stem, suffix = target.name[: -len(target.suffix)] if target.suffix else target.name, target.suffix
    for n in range(1, 1000):
        tag = f".updated-{today}" + (f"-{n}" if n > 1 else "")
        candidate = target.with_name(f"{stem}{tag}{suffix}")
        if candidate.is_file() and not candidate.is_symlink() and candidate.read_bytes() == data:
            return candidate, False  # delivered before
        try:
            _create(candidate, data)
            return candidate, True
        except FileExistsError:
            continue
    raise RuntimeError(f"no free name for the update of {target}")


def released_files(release_dir):
    """(week, file) for every week folder's regular files, in a stable order."""
    out = []
    base = Path(release_dir)
    if not base.is_dir():
        return out  # nothing released yet
    for week in sorted(p for p in base.iterdir() if p.is_dir() and WEEK.fullmatch(p.name)):
        for f in sorted(week.iterdir()):
            if f.is_file() and not f.is_symlink() and not f.name.startswith("."):
                out.append((week.name, f))
    return out


def fill(release_dir, work_dir, today=None):
    """Copy new released files into ``work_dir``; updates go beside the student's files.

    Returns the notices (one line each) for what the student should know about.
    """
    today = today or datetime.date.today().isoformat()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    notices = []
    for week, src in released_files(release_dir):
        data = src.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        target = work_dir / week / src.name
        record = work_dir / RECORDS / week / f"{src.name}.sha256"
        previous = record.read_text().strip() if record.is_file() else None
        target.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(target):
            _create(target, data)
            _record(record, digest)
            continue
        if previous == digest:
            continue  # the student's copy was made from this release
        if previous is None and target.is_file() and not target.is_symlink() and target.read_bytes() == data:
            _record(record, digest)  # an identical copy made before records were kept
            continue
        path, new = _beside(target, data, today)
        _record(record, digest)
        if new:
            notices.append(
                f"New version of {week}/{src.name}: saved beside yours as {week}/{path.name} "
                "(your file is unchanged; copy over what you need)."
            )
    return notices


def main(argv=None):
    """``python workcopy.py RELEASE_DIR WORK_DIR``: fill the working copy and print the notices."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: workcopy.py RELEASE_DIR WORK_DIR", file=sys.stderr)
        return 2
    for line in fill(argv[0], argv[1]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
