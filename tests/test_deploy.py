"""The cluster recipe (deploy/, docs/cluster.md): an image with bubblewrap and the client's pins, manifests that
give worker pods the user namespaces bubblewrap needs. Nothing here needs docker or a Kubernetes cluster."""

import fnmatch
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from grading import doctor
from grading.sandbox import worker

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KEYWORDS = {"FROM", "ARG", "RUN", "COPY", "ENV", "USER", "WORKDIR", "ENTRYPOINT", "CMD", "LABEL", "EXPOSE"}


def instructions(path):
    """[(KEYWORD, arguments)] of a Containerfile: comments dropped, continued lines joined."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append((keyword, " ".join(args.split())))
    return out


def test_the_containerfile_installs_bubblewrap_and_the_project_with_the_clients_pins():
    ins = instructions(DEPLOY / "Containerfile")
    assert {k for k, _ in ins} <= KEYWORDS, ins
    assert ins[0][0] == "ARG" and [k for k, _ in ins if k != "ARG"][0] == "FROM"
    python = dict(a.split("=", 1) for k, a in ins if k == "ARG" and "=" in a)["PYTHON"]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert tuple(map(int, python.split("."))) >= tuple(map(int, requires.removeprefix(">=").split(".")))
    assert [a for k, a in ins if k == "FROM"] == ["python:${PYTHON}-slim AS build", "python:${PYTHON}-slim"]
    runs = [a for k, a in ins if k == "RUN"]
    assert any("apt-get install" in r and "bubblewrap" in r.split() for r in runs)
    install = next(r for r in runs if "pip install" in r)
    assert "--constraint /opt/nn-course/constraints.txt /opt/nn-course/wheels/*.whl" in install
    assert "course doctor --pins | diff /opt/nn-course/constraints.txt -" in install  # the pins, exactly
    # Only the package goes in: never submissions, graded notebooks, feedback or the gradebook.
    sources = {w for k, a in ins if k == "COPY" and not a.startswith("--from") for w in a.split()[:-1]}
    assert sources == {"pyproject.toml", "README.md", "course_lib", "grading", "deploy/constraints.txt"}
    user = [a for k, a in ins if k == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    entry = json.loads(next(a for k, a in ins if k == "ENTRYPOINT"))
    assert entry[-2:] == ["dask", "worker"]


def dask_env(settings):
    """Dask's environment variables for {dotted key: value} (DASK_A__B_C for a.b-c; booleans as Python writes them)."""
    return {"DASK_" + k.upper().replace(".", "__").replace("-", "_"): str(v) for k, v in settings.items()}


def test_the_image_and_the_lab_recipe_set_dask_as_the_local_cluster_does():
    """Remote workers and schedulers get the settings that made 2 local workers scale (benchmarks/grading.py)."""
    from grading.pipeline import DASK_SETTINGS

    want = dask_env(DASK_SETTINGS)
    assert len(want) == 4
    env = dict(
        pair.split("=", 1) for k, a in instructions(DEPLOY / "Containerfile") if k == "ENV" for pair in a.split()
    )
    assert {k: env.get(k) for k in want} == want
    docs = (REPO / "docs" / "cluster.md").read_text()
    lab = docs[docs.index("## Lab machines") : docs.index("## Kubernetes")]
    assert all(f"{k}={v}" in lab for k, v in want.items()), lab


def test_the_image_refuses_pins_for_another_python(tmp_path):
    """The Containerfile's own check, run here on `course doctor --pins` output: same Python passes, other fails."""
    install = next(a for k, a in instructions(DEPLOY / "Containerfile") if k == "RUN" and "pip install" in a)
    check = re.search(r'python -c "([^"]*)"', install).group(1)
    pins = tmp_path / "constraints.txt"
    check = check.replace("/opt/nn-course/constraints.txt", str(pins))
    pins.write_text(doctor.pins() + "\n")
    assert subprocess.run([sys.executable, "-c", check], capture_output=True).returncode == 0
    pins.write_text(doctor.pins().replace("# python {}.{}".format(*sys.version_info[:2]), "# python 3.99", 1))
    r = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert r.returncode == 1 and "--build-arg PYTHON=3.99" in r.stderr
    pinned = {ln.split("==")[0] for ln in doctor.pins().splitlines() if "==" in ln}
    assert set(worker.PACKAGES) <= pinned  # what the worker check compares is what the image pins


def test_pip_install_of_the_checkout_installs_the_code_the_worker_check_hashes():
    """Every folder of .py files is a package and every data file is package data: an image's hash equals ours."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == ["course_lib*", "grading*"]
    for package, patterns in worker._CODE.items():
        root = REPO / package
        for py in root.rglob("*.py"):
            if "__pycache__" not in py.parts:
                assert (py.parent / "__init__.py").exists(), f"{py.parent} is not a package: pip would leave it out"
        data = [p for pattern in patterns if pattern != "*.py" for p in root.glob(pattern) if p.is_file()]
        declared = config["package-data"].get(package, [])
        for p in data:
            rel = p.relative_to(root).as_posix()
            assert p.suffix == ".py" or any(fnmatch.fnmatch(rel, d) for d in declared), f"{rel} is not package data"


def _security(container):
    return container["securityContext"]


def test_the_kubernetes_manifests_give_worker_pods_user_namespaces():
    cluster = yaml.safe_load((DEPLOY / "kubernetes/daskcluster.yaml").read_text())
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1" and cluster["kind"] == "DaskCluster"
    spec = cluster["spec"]
    pod = spec["worker"]["spec"]
    (worker_c,) = pod["containers"]
    (scheduler_c,) = spec["scheduler"]["spec"]["containers"]
    assert pod["hostUsers"] is False
    sec = _security(worker_c)
    assert sec["procMount"] == "Unmasked" and sec["runAsNonRoot"] is True and "privileged" not in sec
    assert sec["seccompProfile"] == {"type": "Unconfined"} and sec["appArmorProfile"] == {"type": "Unconfined"}
    assert worker_c["image"] == scheduler_c["image"]
    assert worker_c["command"][-2:] == ["dask", "worker"] and scheduler_c["command"][-2:] == ["dask", "scheduler"]
    args = worker_c["args"]
    assert args[args.index("--nthreads") + 1] == "1"
    assert spec["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == cluster["metadata"]["name"]

    gateway = yaml.safe_load((DEPLOY / "dask-gateway/values.yaml").read_text())["gateway"]["backend"]
    assert gateway["worker"]["extraPodConfig"] == {"hostUsers": False}
    assert gateway["worker"]["extraContainerConfig"]["securityContext"] == sec  # the same pod settings
    assert gateway["image"]["name"] == worker_c["image"].rsplit(":", 1)[0]
    # What `course doctor` tells an instructor to set is what the manifests set.
    for words in ("hostUsers: false", "seccompProfile Unconfined", "appArmorProfile Unconfined", "procMount Unmasked"):
        assert words in doctor.K8S_FIX


def test_the_docs_describe_the_recipe_and_the_readme_points_there():
    readme = (REPO / "README.md").read_text()
    assert "docs/cluster.md" in readme and "docs/capacity.md" in readme
    cluster = (REPO / "docs/cluster.md").read_text()
    for name in ("deploy/Containerfile", "deploy/kubernetes/daskcluster.yaml", "deploy/dask-gateway/values.yaml"):
        assert (REPO / name).exists() and name in cluster
    assert "dask scheduler" in cluster and "course doctor --scheduler" in cluster
