"""Import student submissions into submitted/<student>/<week>/.

Accepts a folder or a .zip laid out as <student>/<week>/<files> (or
<student>/<files> together with --week). Inputs are only read, never changed.
A newer submission replaces the current one, which moves to
submitted/.history/, so nothing is ever lost; an older one goes to the
history directly. Zip archives are checked before anything is extracted:
size and file count limits (no zip bombs), no absolute paths, no "..", no
symbolic links.
"""

import hashlib
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .course import STUDENT_ID, CourseError
from .validate import _walk

MAX_UNZIPPED = 1 * 2**30
MAX_MEMBERS = 20000
MAX_RATIO = 200  # uncompressed / compressed, per archive


@dataclass
class CollectReport:
    rows: list = field(default_factory=list)  # (student, week, status, detail)

    @property
    def rejected(self):
        return [r for r in self.rows if r[2] == "rejected"]

    def add(self, student, week, status, detail=""):
        self.rows.append((student, week or "-", status, detail))

    def table(self):
        if not self.rows:
            return "nothing to collect"
        widths = [max(len(str(r[i])) for r in self.rows) for i in range(3)]
        return "\n".join(
            "  ".join(str(r[i]).ljust(widths[i]) for i in range(3)) + ("  " + r[3] if r[3] else "") for r in self.rows
        )


def collect(course, path, week=None):
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
            _safe_extract(path, Path(tmp))
            _collect_tree(course, Path(tmp), week, report)
    else:
        _collect_tree(course, path, week, report)
    return report


def _safe_extract(archive, dest):
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
            mode = info.external_attr >> 16
            if info.flag_bits & 0x1:
                raise CourseError(f"{archive.name}: {name} is encrypted; nothing was extracted")
            if stat.S_ISLNK(mode):
                raise CourseError(f"{archive.name}: {name} is a symbolic link; nothing was extracted")
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise CourseError(f"{archive.name}: unsafe path {name!r}; nothing was extracted")
        written = 0
        for info in infos:
            target = dest / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > declared or written > MAX_UNZIPPED:  # headers lied
                        raise CourseError(f"{archive.name} expands beyond its declared size (a zip bomb?)")
                    out.write(chunk)


def _student_dirs(root, week, weeks):
    """[(student, week, folder)] found under root."""
    found = []
    entries = [e for e in sorted(root.iterdir()) if not e.name.startswith((".", "__MACOSX"))]
    for entry in entries:
        if not entry.is_dir() or entry.is_symlink():
            continue
        sub_weeks = [w for w in weeks if (entry / w).is_dir()]
        if sub_weeks:
            found += [(entry.name, w, entry / w) for w in sub_weeks]
        elif week and any(entry.glob("*.ipynb")):
            found.append((entry.name, week, entry))
    if not found and len(entries) == 1 and entries[0].is_dir():
        return _student_dirs(entries[0], week, weeks)  # one wrapping folder, e.g. "submissions/"
    return found


def _collect_tree(course, root, week, report):
    weeks = course.weeks()
    found = _student_dirs(root, week, weeks)
    if not found:
        raise CourseError(
            f"no submissions found in {root.name}: expected <student>/<week>/<notebook>.ipynb "
            f"with a week among {', '.join(weeks)} (or <student>/<notebook>.ipynb with --week)"
        )
    existing = {p.name.lower(): p.name for p in course.submitted().iterdir()} if course.submitted().exists() else {}
    seen = {}
    for student, wk, folder in found:
        if not STUDENT_ID.match(student) or ".." in student:
            report.add(student, wk, "rejected", "invalid student id: use ASCII letters, digits, '_', '.' or '-'")
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
        report.add(student, wk, *_place(course, student, wk, folder))


def _timestamp_of(folder):
    ts = folder / "timestamp.txt"
    if ts.is_file() and not ts.is_symlink():
        text = ts.read_text(errors="replace").strip()
        try:
            from nbgrader.utils import parse_utc

            return parse_utc(text), text
        except (ValueError, OverflowError):
            pass
    newest = max((p.lstat().st_mtime for p in folder.rglob("*") if p.is_file() and not p.is_symlink()), default=0.0)
    when = datetime.fromtimestamp(newest, tz=UTC)
    return when.replace(tzinfo=None), when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _digest(folder):
    h = hashlib.sha256()
    for rel, full, kind in sorted(_walk(folder, [])):
        if kind == "file" and rel != "timestamp.txt":
            h.update(rel.encode())
            h.update(full.read_bytes())
    return h.hexdigest()


def _copy(src, dest, timestamp_text):
    notes = []
    dest.mkdir(parents=True)
    for rel, full, kind in _walk(src, notes):
        if kind != "file":
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full, target, follow_symlinks=False)
    (dest / "timestamp.txt").write_text(timestamp_text)
    return notes


def _place(course, student, week, folder):
    dest = course.submitted(student, week)
    new_when, new_text = _timestamp_of(folder)
    if not dest.exists():
        notes = _copy(folder, dest, new_text)
        return "collected", "; ".join(notes)
    if _digest(folder) == _digest(dest):
        return "unchanged", "identical to the current submission (duplicate)"
    cur_when, cur_text = _timestamp_of(dest)
    history = course.submitted() / ".history" / student / week
    history.mkdir(parents=True, exist_ok=True)
    if new_when >= cur_when:
        keep = history / _stamp_dir(cur_text, history)
        shutil.move(str(dest), str(keep))
        notes = _copy(folder, dest, new_text)
        return "updated", f"newer submission; the previous one is kept in {keep.relative_to(course.root)}" + (
            "; " + "; ".join(notes) if notes else ""
        )
    old = history / _stamp_dir(new_text, history)
    _copy(folder, old, new_text)
    return "older", f"older than the current submission; kept in {old.relative_to(course.root)}, current unchanged"


def _stamp_dir(text, parent):
    base = "".join(ch if ch.isalnum() else "-" for ch in text)[:40] or "undated"
    name, n = base, 1
    while (parent / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name
