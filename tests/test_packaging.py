"""Packaging and repository hygiene: pyproject and environment.yml agree, the two commands exist."""

import re
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONDA_NAMES = {}  # PyPI name -> conda-forge name, where they differ


def _name_and_spec(req):
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    name, extras, spec = m.group(1).lower().replace("_", "-"), m.group(2) or "", m.group(3)
    return name, extras, ",".join(sorted(s.strip() for s in spec.split(",") if s.strip()))


def pyproject_requirements():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = {}
    for req in data["project"]["dependencies"] + data["project"]["optional-dependencies"]["dev"]:
        name, extras, spec = _name_and_spec(req)
        reqs[CONDA_NAMES.get(name, name)] = spec
        if name == "dask" and "distributed" in extras:
            reqs["distributed"] = spec  # dask[distributed] is two conda packages
    return reqs


def environment_requirements():
    reqs = {}
    for line in (REPO / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.\-]+)(\s+[^#]*)?$", line)
        if m and m.group(1) not in ("pip", "python", "conda-forge") and not m.group(1).startswith("-"):
            reqs[m.group(1).lower()] = ",".join(sorted(s.strip() for s in (m.group(2) or "").split(",") if s.strip()))
    return reqs


def test_environment_yml_and_pyproject_agree_on_every_package_and_range():
    py, env = pyproject_requirements(), environment_requirements()
    assert set(py) == set(env), (
        f"only in pyproject: {set(py) - set(env)}; only in environment.yml: {set(env) - set(py)}"
    )
    for name in py:
        assert py[name] == env[name], f"{name}: pyproject {py[name]!r} vs environment.yml {env[name]!r}"


def test_the_two_readme_commands_exist_and_ci_calls_the_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    targets = re.findall(r"^([a-z-]+):", (REPO / "Makefile").read_text(), re.M)
    for t in ["install", "test", "demo", "lab", "instructor", "release", "lint", "bench"]:
        assert t in targets
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_no_machine_paths_secrets_or_large_binaries_are_committed():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        path = REPO / f
        if not path.is_file():
            continue
        assert path.stat().st_size < 2 * 2**20, f"{f} is larger than 2 MB"
        if path.suffix in (".gz", ".png"):
            continue
        text = path.read_text(errors="ignore")
        # Spelled in pieces so that this file does not match itself.
        for needle in ("/work" + "/main", "/root" + "/.pyenv", "/tmp" + "/nncg-"):
            assert needle not in text, f"{f} contains the machine path {needle}"
        assert not re.search(r"postgres(ql)?://[^\s:@/]+:[^\s@/]+@", text), f"{f} contains a database password"
