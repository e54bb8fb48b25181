"""Grade identical submissions once per session and reuse the verdicts.

A class hands in many byte-identical submissions (the blank release, unchanged,
is the common one). The client computes a key for every packed submission: a
SHA-256 of everything the grade depends on, namely

* the submission as the worker sees it: each notebook's bytes (or why it cannot
  be read), every extra file staged into the kernel, the reader's notes;
* the trusted side: the week, its fingerprint (source/, release/, course_lib and
  the grader's code), the Assignment itself (specs, release skeleton, reference
  run) and the week's data files, as bytes;
* the limits, the sandbox and figures flags;
* the environment every worker is checked against (package versions, code hashes).

Only the first submission with a key is graded; the others get a copy of its
per-notebook verdicts. Everything about the student (id, submission hash,
timestamp, and the late penalty the client computes when it stores the result)
is this student's own, never the first one's.

Safe under adversarial use: the cache lives in the client's memory for one
session (nothing on disk to pre-seed), a student can only match a key with the
very same bytes (which earn the same grade), and a result that depends on the
machine rather than on the bytes (a grading error, a timeout, a kill) is never
reused: the next identical submission is graded on its own.
"""

import copy
import dataclasses
import hashlib
import json
import pickle

# A notebook that ran to the end ("ok"), or could not be run at all (None: the submission's fault).
_REUSABLE_RUNS = (None, "ok")


def assignment_digest(assignment):
    """A hash of the trusted bundle a submission is graded against (its specs, skeleton, reference and the
    fingerprint every result records)."""
    bundle = (assignment.week, assignment.fingerprint, assignment.notebooks, assignment.source_files)
    return hashlib.sha256(pickle.dumps(bundle)).hexdigest()


def cache_key(assignment, job, config, environment, trusted=None):
    """The key of packed ``job`` (grade.pack), or None when it cannot be reused (the client could not read it).

    ``trusted``: ``assignment_digest(assignment)``, when the caller has it already.
    """
    parcel = job.parcel
    if parcel is None or parcel.error or parcel.submission is None:
        return None
    h = hashlib.sha256()

    def add(*parts):
        for part in parts:
            data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=repr).encode()
            h.update(len(data).to_bytes(8, "big") + data)  # length-prefixed: no two inputs run together

    limits, sandbox, figures = config
    add("grading.cache v1", job.week, assignment.fingerprint)
    add(trusted or assignment_digest(assignment))  # the week, its notebooks and its data files
    add(repr(limits), bool(sandbox), bool(figures), environment)
    sub = parcel.submission
    for name in sorted(sub.notebooks):
        nf = sub.notebooks[name]
        add(name, nf.problem, nf.raw if nf.raw is not None else b"")
    add(len(sub.extra_files))
    for rel, data in sub.extra_files:
        add(rel, data)
    add(list(sub.notes))
    return h.hexdigest()


def reusable(result):
    """Whether ``result`` depends only on what the key hashes: graded or failed, every run to its end."""
    if result.get("status") not in ("graded", "failed") or result.get("infrastructure_error"):
        return False
    return all(nb.get("run_status") in _REUSABLE_RUNS for nb in result.get("notebooks", {}).values())


class ResultCache:
    """Results by key, for one grading session (in memory, on the client)."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self._results = {}
        self._trusted = {}  # id(assignment) -> (assignment, its digest): hashed once per week

    def key(self, assignment, job, config, environment):
        """``cache_key`` of ``job``, or None when this cache is off (--no-cache)."""
        if not self.enabled:
            return None
        held, digest = self._trusted.get(id(assignment), (None, None))
        if held is not assignment:
            digest = assignment_digest(assignment)
            self._trusted[id(assignment)] = (assignment, digest)
        return cache_key(assignment, job, config, environment, trusted=digest)

    def get(self, key, job):
        """This student's result from a stored one with ``key``, or None."""
        if not self.enabled or key is None or key not in self._results:
            return None
        return reuse(self._results[key], job)

    def put(self, key, result):
        """Keep ``result`` for later submissions with ``key`` when it may be reused; True if kept."""
        if not self.enabled or key is None or not reusable(result):
            return False
        self._results.setdefault(key, copy.deepcopy(result))
        return True


def reuse(result, job):
    """A copy of ``result`` (graded from the same bytes) as ``job``'s own: verdicts shared, student fields not."""
    out = copy.deepcopy(result)
    for k in ("late", "traceback", "unconfined"):
        out.pop(k, None)  # set by the client for each student when it stores the result
    out.update({k: getattr(job, k, None) for k in ("student", "week")})
    parcel = job.parcel
    out.update(submission_hash=parcel.submission_hash, timestamp=parcel.timestamp)
    out["seconds"] = 0.0  # nothing ran for this student
    out["reused_from_identical"] = True
    return out


class Twins:
    """Submissions that wait for an identical one in flight (same key), for one session.

    A waiting twin is held without its files (who handed it in, and when, is all that
    reusing a result needs), so any number of them costs the client almost nothing and
    none of them takes a place among the tasks in flight. When the result is back, the
    twins get a copy of it; when it cannot be reused (a timeout, a lost worker), every
    twin goes back to be graded on its own, in parallel like any other submission.
    """

    def __init__(self, cache):
        self.cache = cache
        self._waiting = {}  # key -> twins (without their files) of the one in flight
        self._alone = set()  # keys whose result could not be reused: each twin is graded on its own

    def wait(self, key, packed):
        """True if ``packed`` now waits for its twin in flight; False: grade it (its own twins will wait)."""
        if key is None or key in self._alone:
            return False
        if key in self._waiting:
            parcel = dataclasses.replace(packed.parcel, submission=None)  # the bytes equal the twin's
            self._waiting[key].append(dataclasses.replace(packed, parcel=parcel))
            return True
        self._waiting[key] = []
        return False

    def back(self, key, result):
        """``result`` (of the one graded with ``key``) is back: (results for its twins, jobs to grade again)."""
        twins = self._waiting.pop(key, [])
        if self.cache.put(key, result):
            return [self.cache.get(key, twin) for twin in twins], []
        if key is not None:
            self._alone.add(key)
        return [], [dataclasses.replace(twin, parcel=None) for twin in twins]  # read again when sent
