"""Every single-point bug planted in a solution must lose points (see tests/mutation.py).

A surviving mutant is accepted only when it is listed in
tests/mutation_allowlist.json with the reason it is *equivalent* (it computes
the same function, so no test could tell it apart).
"""

import json
from pathlib import Path

import pytest

from tests.mutation import analyse

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(REPO.glob("source/*/*.ipynb"))
ALLOW = json.loads((REPO / "tests" / "mutation_allowlist.json").read_text())

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_every_planted_bug_is_caught(path):
    killed, survivors = analyse(path)
    allowed = {(a["cell"], a["operator"], a["before"], a["after"]) for a in ALLOW.get(path.parent.name, [])}
    unexplained = [m for m in survivors if (m.cell, m.operator, m.before, m.after) not in allowed]
    assert len(killed) >= 20, "too few mutation sites: is the notebook's solution code being found?"
    survived = {(m.cell, m.operator, m.before, m.after) for m in survivors}
    assert allowed <= survived, f"allowlist entries that no longer survive (remove them): {allowed - survived}"
    assert not unexplained, "bugs the tests let through:\n" + "\n".join(
        f"  {m.cell} line {m.line}: {m.operator}: {m.before!r} -> {m.after!r}" for m in unexplained
    )


def test_every_allowlist_entry_explains_itself():
    for week, entries in ALLOW.items():
        assert (REPO / "source" / week).is_dir(), week
        for a in entries:
            assert len(a.get("why", "")) > 20, a


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_every_catalogued_mistake_fails_its_test_with_its_hint(path):
    from grading.demo import load_mistakes
    from tests.mutation import mistake_outcomes

    mistakes = load_mistakes(path.parent.name)
    assert len(mistakes) >= 4, f"grading/mistakes/{path.parent.name}.json needs typical mistakes"
    problems = []
    for m, outcome in mistake_outcomes(path, mistakes):
        failed = outcome.get(m["fails"])
        if not failed:
            problems.append(f"{m['description']}: {m['fails']} did not fail ({outcome})")
        elif m["hint"].lower() not in failed.lower():
            problems.append(f"{m['description']}: hint {m['hint']!r} not in {failed!r}")
        expected = {m["fails"], *m.get("also_fails", [])}  # e.g. dZ2 wrong makes dZ1 wrong too
        others = [g for g, r in outcome.items() if r and g not in expected and not r.startswith("not reached")]
        if others:
            problems.append(f"{m['description']}: also fails {others}")
    assert not problems, "\n".join(problems)
