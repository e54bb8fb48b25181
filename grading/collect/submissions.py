"""Import student submissions into submitted/<student>/<week>/.

Accepts a folder or a .zip laid out as <student>/<week>/<files> (or
<student>/<files> together with --week), or Canvas's flat "Download
Submissions" zip (see ``CANVAS_FILE``). Inputs are only read, never changed.
A newer submission replaces the current one, which moves to
submitted/.history/, so nothing is ever lost; an older one goes to the
history directly. Zip archives are checked before anything is extracted:
size and file count limits (no zip bombs), no absolute paths, no "..".
Symbolic links are never followed or extracted, and any fault in one
student's files (a link, an encrypted entry, a file and a folder with one
name, an invalid id) rejects that student alone, with the reason.

Timestamps never come from a file the student wrote: a timestamp.txt in the
input is ignored; the newest date of the zip entries (or of the files on
disk, for a folder) is the submission's time, and the report says so.
nbgrader's own exchange (``nbgrader collect``) writes submitted/'s
timestamp.txt itself, and that one is used as it is.
"""

import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..course import CourseError
from ..text import for_terminal
from .validate import _walk

MAX_UNZIPPED = 1 * 2**30
MAX_MEMBERS = 20000
MAX_RATIO = 200  # uncompressed / compressed, per archive

# Canvas's "Download Submissions" zip holds every file at its top level, renamed
# <name>_[LATE_]<user id>_<attachment id>_<original file name>, <name> being the
# student's lastnamefirstname in lower case. That <name> becomes the student id.
CANVAS_FILE = re.compile(r"(?P<name>[^_]+)_(?:(?P<late>LATE)_)?(?P<user>\d+)_(?P<attachment>\d+)_(?P<file>.+)")
# Canvas adds "-1", "-2" before the extension of a re-uploaded file of the same name.
CANVAS_COPY = re.compile(r"(?P<stem>.+)-\d+")


@dataclass
class CollectReport:
    rows: list = field(default_factory=list)  # (student, week, status, detail)

    @property
    def rejected(self):
        return [r for r in self.rows if r[2] == "rejected"]

    def add(self, student, week, status, detail=""):
        self.rows.append((student, week or "-", status, detail))

    def table(self):
        """The report for a terminal: names and details come from students, so each is escaped."""
        if not self.rows:
            return "nothing to collect"
        rows = [(for_terminal(s, 70), for_terminal(w, 70), st, for_terminal(d)) for s, w, st, d in self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            "  ".join(r[i].ljust(widths[i]) for i in range(3)) + ("  " + r[3] if r[3] else "") for r in rows
        )


def collect(course, path, week=None):
    """Import ``path`` (a folder or a zip); a fault in one student's files rejects only that student."""
    path = Path(path)
    if week is not None:
        course.check_week(week)
    report = CollectReport()
    if not path.exists():
        raise CourseError(f"{path} does not exist")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise CourseError(f"{path} is neither a folder nor a zip archive")
        with tempfile.TemporaryDirectory(prefix="nncollect-") as tmp:
            faults = _safe_extract(path, Path(tmp))
            _collect_tree(course, Path(tmp), week, report, faults, ZIP_DATES, path.name)
    else:
        _collect_tree(course, path, week, report, [], DISK_DATES, path.name)
    return report


def _safe_extract(archive, dest):
    """Extract ``archive`` into the new folder ``dest``; returns [(member path, why it was left out)].

    What makes the whole archive suspect (too many entries, a zip bomb, a path that
    leaves the folder, sizes that lie) stops everything; a member that cannot be
    extracted (a symbolic link, encrypted, a file and a folder with one name) is a
    fault of the student it belongs to, left out and reported by the caller.
    """
    faults = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise CourseError(f"{archive.name}: {len(infos)} entries is over the limit of {MAX_MEMBERS}")
        declared = sum(i.file_size for i in infos)
        compressed = max(1, sum(i.compress_size for i in infos))
        if declared > MAX_UNZIPPED or declared / compressed > MAX_RATIO:
            raise CourseError(
                f"{archive.name} looks like a zip bomb: {declared / 2**20:.0f} MB uncompressed from "
                f"{compressed / 2**20:.1f} MB (limits {MAX_UNZIPPED // 2**20} MB, ratio {MAX_RATIO}); "
                "nothing was extracted"
            )
        for info in infos:
            name = info.filename
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise CourseError(f"{archive.name}: unsafe path {name!r}; nothing was extracted")
        written = 0
        for info in infos:
            why = _member_problem(info)
            if why is None:
                try:
                    written += _extract_member(zf, info, dest, declared - written)
                    continue
                except FileExistsError:  # a file member met a file: the archive names it twice
                    why = "the archive holds it twice" if (dest / info.filename).is_file() else _CLASH
                except OSError:
                    why = _CLASH
            faults.append((info.filename.rstrip("/"), why))
    return faults


_CLASH = "a file and a folder have the same name"


def _member_problem(info):
    if info.flag_bits & 0x1:
        return "it is encrypted"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "it is a symbolic link"
    return None


def _extract_member(zf, info, dest, budget):
    """Write one member (its date becomes the file's mtime); returns the bytes written."""
    target = dest / info.filename
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "xb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > budget:  # headers lied
                raise CourseError(f"{zf.filename} expands beyond its declared size (a zip bomb?)")
            out.write(chunk)
    try:
        when = time.mktime((*info.date_time, 0, 0, -1))  # zip dates are local times
        os.utime(target, (when, when))
    except (OverflowError, ValueError):
        pass
    return written


def _student_dirs(root, week, weeks):
    """([(student, week, folder)], [(student, week, why not)], the folder that holds the students).

    Symbolic links are never followed: a linked student or week folder is refused.
    """
    found, refused = [], []
    entries = [e for e in sorted(root.iterdir()) if not e.name.startswith((".", "__MACOSX"))]
    for entry in entries:
        if entry.is_symlink():
            refused.append((entry.name, week, "the student folder is a symbolic link: not imported"))
            continue
        if not entry.is_dir():
            continue
        links = [w for w in weeks if (entry / w).is_symlink()]
        refused += [(entry.name, w, f"{w} is a symbolic link: not imported") for w in links]
        sub_weeks = [w for w in weeks if (entry / w).is_dir() and w not in links]
        if sub_weeks:
            found += [(entry.name, w, entry / w) for w in sub_weeks]
        elif week and not links and any(entry.glob("*.ipynb")):
            found.append((entry.name, week, entry))
    if not found and not refused and len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return _student_dirs(entries[0], week, weeks)  # one wrapping folder, e.g. "submissions/"
    return found, refused, root


def _collect_tree(course, root, week, report, faults, dates, shown):
    """Import the tree ``root``; ``shown`` names it in messages (never a temporary folder's name)."""
    canvas = _canvas_files(root)
    if canvas is None:
        _import_tree(course, root, week, report, faults, dates, shown)
        return
    with tempfile.TemporaryDirectory(prefix="nncanvas-") as tmp:
        notes = _stage_canvas(course, canvas, week, faults, Path(tmp), report)
        if any(Path(tmp).iterdir()):
            _import_tree(course, Path(tmp), week, report, [], dates, shown, notes)


def _canvas_files(root):
    """{student: [(file, match)]} when ``root`` is Canvas's flat download, else None.

    Flat means no folders at all (inside at most one wrapping folder) and at least one
    file named as Canvas names them; a file that is not named so is rejected by ``_stage_canvas``.
    """
    entries = [e for e in sorted(root.iterdir()) if not e.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return _canvas_files(entries[0])
    if not entries or any(e.is_dir() and not e.is_symlink() for e in entries):
        return None
    matches = [(e, CANVAS_FILE.fullmatch(e.name)) for e in entries]
    if not any(m for _, m in matches):
        return None
    out = {}
    for entry, m in matches:
        out.setdefault(m["name"] if m else None, []).append((entry, m))
    return out


def _stage_canvas(course, canvas, week, faults, staging, report):
    """Copy each Canvas student's files to ``staging``/<student>/<week>/; returns {student: [notes]}.

    A student is rejected whole (nothing copied) for a file that is a link or could not be
    extracted, two Canvas users sharing the name, a week that cannot be told, or two files
    for one notebook.
    """
    notes, faults_of = {}, {}
    for path, why in faults:  # members left out of the extraction (a symbolic link, encrypted, ...)
        m = CANVAS_FILE.fullmatch(path.rsplit("/", 1)[-1])
        faults_of.setdefault(m["name"] if m and m["name"] in canvas else None, []).append((path, why))
    for path, why in faults_of.pop(None, []):
        report.add(path, week, "rejected", f"{path} could not be extracted: {why}")
    for name, files in canvas.items():
        if name is None:
            for entry, _ in files:
                report.add(entry.name, week, "rejected", "not named as Canvas names submissions: not imported")
            continue
        problem, wk, targets = _canvas_student(course, files, week, faults_of.get(name, []))
        if problem:
            report.add(name, wk, "rejected", problem + "; nothing imported")
            continue
        dest = staging / name / wk
        dest.mkdir(parents=True)
        for (entry, _), target in zip(files, targets):
            shutil.copy2(entry, dest / target, follow_symlinks=False)  # keeps the date: the submission's time
        late = any(m["late"] for _, m in files)
        notes[name] = ["from Canvas's download"] + (["Canvas marked it LATE"] if late else [])
    return notes


def _canvas_student(course, files, week, faults):
    """(problem or None, week, target file names) for one Canvas student's files.

    ``faults``: this student's archive members that were not extracted.
    """
    users = sorted({m["user"] for _, m in files})
    if len(users) > 1:
        return f"Canvas users {', '.join(users)} share this name: rename one's files to tell them apart", week, []
    bad = list(faults)
    bad += [(e.name, "it is a symbolic link") for e, _ in files if e.is_symlink()]
    bad += [(e.name, "it is not a regular file") for e, _ in files if not e.is_symlink() and not e.is_file()]
    if bad:
        return f"{bad[0][0]} could not be extracted: {bad[0][1]}", week, []
    originals = [m["file"] for _, m in files]
    if week is None:
        named = {w for w in course.weeks() for f in originals if _notebook_name(f, course.notebooks(w))}
        if len(named) != 1:
            return "cannot tell the week from the file names: pass --week", None, []
        week = named.pop()
    targets = [_notebook_name(f, course.notebooks(week)) or f for f in originals]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        return f"two files for {twice[0]} ({', '.join(originals)}): keep one", week, []
    return None, week, targets


def _notebook_name(original, notebooks):
    """``<notebook>.ipynb`` when ``original`` is one of ``notebooks``, also as Canvas's "<notebook>-1.ipynb"."""
    stem, dot, ext = original.rpartition(".")
    if not dot or ext != "ipynb":
        return None
    m = CANVAS_COPY.fullmatch(stem)
    for candidate in (stem, m["stem"] if m else None):
        if candidate in notebooks:
            return f"{candidate}.ipynb"
    return None


def _import_tree(course, root, week, report, faults, dates, shown, notes=None):
    weeks = course.weeks()
    found, refused, base = _student_dirs(root, week, weeks)
    if not found and not refused:
        raise CourseError(
            f"no submissions found in {shown}: expected <student>/<week>/<notebook>.ipynb "
            f"with a week among {', '.join(weeks)} (or <student>/<notebook>.ipynb with --week), "
            "or Canvas's download (see course collect --help)"
        )
    for student, wk, why in refused:
        report.add(student, wk, "rejected", why)
    existing = {p.name.lower(): p.name for p in course.submitted().iterdir()} if course.submitted().exists() else {}
    reserved = course.reserved_names()
    unclaimed = list(faults)
    seen = {}
    for student, wk, folder in found:
        mine = _faults_of(folder.relative_to(root).as_posix(), unclaimed)
        unclaimed = [f for f in unclaimed if f not in mine]
        problem = course.student_problem(student, reserved)
        if problem:
            report.add(student, wk, "rejected", problem)
            continue
        if mine:
            path, why = mine[0]
            more = f" (and {len(mine) - 1} more)" if len(mine) > 1 else ""
            report.add(student, wk, "rejected", f"{path} could not be extracted: {why}{more}; nothing imported")
            continue
        too_big = _size_problem(folder)
        if too_big:
            report.add(student, wk, "rejected", too_big)
            continue
        key = (student.lower(), wk)
        if key in seen:
            report.add(
                student, wk, "rejected", f"duplicate of {seen[key]!r} in the same import (ids differ only in case)"
            )
            continue
        seen[key] = student
        other = existing.get(student.lower())
        if other and other != student:
            report.add(student, wk, "rejected", f"differs only in case from the existing student {other!r}")
            continue
        try:
            status, detail = _place(course, student, wk, folder, dates)
            report.add(student, wk, status, "; ".join([detail, *(notes or {}).get(student, [])]))
        except OSError as e:  # one student's unreadable files must not stop the class
            report.add(student, wk, "rejected", f"cannot read the submission ({e.strerror}); nothing imported")
    prefix = "" if base == root else base.relative_to(root).as_posix() + "/"
    for path, why in unclaimed:  # e.g. a student whose week folder could not be made at all
        owner = path[len(prefix) :].split("/")[0] if path.startswith(prefix) else path
        report.add(owner, None, "rejected", f"{path} could not be extracted: {why}")


def _size_problem(folder):
    """Why ``folder`` is too big to import, or None: a folder gets the limits a zip archive has.

    Without them one student's folder (a sparse file of terabytes, a million files) would fill
    the course's disk and the memory of every later collect, which hashes what it compares.
    """
    count = total = 0
    for _, full, kind in _walk(folder, []):
        if kind == "file":
            count, total = count + 1, total + full.lstat().st_size
            if count > MAX_MEMBERS or total > MAX_UNZIPPED:
                return (
                    f"over {MAX_MEMBERS} files or {MAX_UNZIPPED // 2**20} MB, the limits of a submission; "
                    "nothing imported"
                )
    return None


def _faults_of(rel, faults):
    """The faults inside the folder ``rel`` or on the way to it."""
    return [(p, why) for p, why in faults if p == rel or p.startswith(rel + "/") or rel.startswith(p + "/")]


ZIP_DATES = "the dates of its zip entries"
DISK_DATES = "its files' dates on disk"


def _timestamp_of(folder, dates=None):
    """(naive UTC datetime, text) of a submission.

    ``dates=None``: ``folder`` is in submitted/, whose timestamp.txt a collector wrote
    (``course collect``, or ``nbgrader collect`` from the exchange). Otherwise ``folder``
    is what a student made: its timestamp.txt is ignored (a student could write any date)
    and the newest date of its files is used, as ``dates`` names it.
    """
    ts = folder / "timestamp.txt"
    if dates is None and ts.is_file() and not ts.is_symlink():
        text = ts.read_text(errors="replace").strip()
        try:
            from nbgrader.utils import parse_utc

            return parse_utc(text), text
        except (ValueError, OverflowError):
            pass
    files = [full for rel, full, kind in _walk(folder, []) if kind == "file" and rel != "timestamp.txt"]
    newest = max((p.lstat().st_mtime for p in files), default=0.0)
    when = datetime.fromtimestamp(newest, tz=UTC)
    return when.replace(tzinfo=None), when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _digest(folder):
    h = hashlib.sha256()
    for rel, full, kind in sorted(_walk(folder, [])):
        if kind == "file" and rel != "timestamp.txt":
            h.update(rel.encode() + b"\0" + full.lstat().st_size.to_bytes(8, "big"))
            with open(full, "rb") as f:  # in chunks: never a whole file in memory
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def _copy(src, dest, timestamp_text):
    """Copy a submission's regular files; timestamp.txt is the collector's, never the student's."""
    notes = []
    dest.mkdir(parents=True)
    for rel, full, kind in _walk(src, notes):
        if kind != "file":
            continue
        if rel == "timestamp.txt":
            notes.append("its timestamp.txt was ignored")
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full, target, follow_symlinks=False)
    (dest / "timestamp.txt").write_text(timestamp_text)
    return notes


def _place(course, student, week, folder, dates):
    dest = course.submitted(student, week)
    if dest.is_symlink():
        return "rejected", f"{dest.relative_to(course.root)} is a symbolic link; nothing imported"
    new_when, new_text = _timestamp_of(folder, dates)
    when = f"submitted {new_text} (from {dates})"
    if not dest.exists():
        notes = _copy(folder, dest, new_text)
        return "collected", "; ".join([when, *notes])
    if _digest(folder) == _digest(dest):
        return "unchanged", "identical to the current submission (duplicate)"
    cur_when, cur_text = _timestamp_of(dest)
    history = course.submitted() / ".history" / student / week
    history.mkdir(parents=True, exist_ok=True)
    if new_when >= cur_when:
        keep = history / _stamp_dir(cur_text, history)
        shutil.move(str(dest), str(keep))
        notes = _copy(folder, dest, new_text)
        return "updated", "; ".join(
            [f"newer submission ({when}); the previous one is kept in {keep.relative_to(course.root)}", *notes]
        )
    old = history / _stamp_dir(new_text, history)
    _copy(folder, old, new_text)
    return "older", (
        f"older than the current submission ({when}); kept in {old.relative_to(course.root)}, current unchanged"
    )


def _stamp_dir(text, parent):
    base = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text)[:40] or "undated"
    name, n = base, 1
    while (parent / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name
