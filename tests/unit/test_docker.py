"""docker/: the lab image's Dockerfile parses and installs a locked set (docker/locks/, checked in
tests/unit/test_locks.py); the compose file and the hub config agree. (No Docker engine is needed:
these read the files.)"""

import re
import shlex

import pytest

from tests.conftest import ROOT
from tests.dockerbuild import INSTRUCTIONS, parse_dockerfile

DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def dockerfile():
    return parse_dockerfile((DOCKER / "Dockerfile").read_text())


def test_parser_reads_continuations_and_rejects_a_dangling_one():
    parsed = parse_dockerfile("# c\nFROM a AS b\nRUN x \\\n  # note\n  && y\n")
    assert parsed == [(2, "FROM", "a AS b"), (3, "RUN", "x && y")]
    with pytest.raises(ValueError, match="line 2"):
        parse_dockerfile("FROM a\nRUN x \\\n")


def test_dockerfile_parses(dockerfile):
    unknown = [(n, word) for n, word, _ in dockerfile if word not in INSTRUCTIONS]
    assert not unknown, f"unknown instructions: {unknown}"
    first = next(word for _, word, _ in dockerfile if word != "ARG")
    assert first == "FROM", "only ARG may come before the first FROM"
    stages = [args.split()[-1] for _, word, args in dockerfile if word == "FROM"]
    assert stages == ["base", "grader", "k8s-hub", "lab"], "the trainee image (lab) is the last stage: the default"
    for n, word, args in dockerfile:
        if word in ("CMD", "ENTRYPOINT") and args.startswith("["):
            import json

            json.loads(args)  # exec form must be valid JSON, or Docker runs it through a shell
        if word == "COPY" and not args.startswith("--from"):
            for src in shlex.split(args)[:-1]:
                assert (ROOT / src).exists(), f"Dockerfile:{n}: COPY {src}: not in the repository"


def test_dockerfile_base_brings_no_cuda_and_no_gpu_by_default(dockerfile):
    """Both CUDA majors' libraries come as wheels from the lock, so the base is plain Ubuntu: catches a
    CUDA base image of one major under the other major's set, and an image that shows every GPU to a
    container that asked for none (NVIDIA_VISIBLE_DEVICES=all, as the CUDA base images set)."""
    args = dict(a.split("=", 1) for _, w, a in dockerfile if w == "ARG" and "=" in a)
    assert re.fullmatch(r"ubuntu:\d+\.\d+", args["BASE_IMAGE"]), args["BASE_IMAGE"]
    env = " ".join(a for _, w, a in dockerfile if w == "ENV")
    assert "NVIDIA_VISIBLE_DEVICES" not in env
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env


def test_image_installs_a_locked_set(dockerfile):
    """The image's Python packages are one lock of docker/locks/ (CUDA 13 unless CUDA_SET says
    otherwise), installed by hash, then the project without dependencies: catches an install step
    that resolves on its own again (`pip install torch==...`, `-e ".[gpu,hub]"`), the ResolutionImpossible
    of CUDA 13 PyTorch beside CUDA 12 numba-cuda, or a default set that has no lock."""
    from techday.hub import locks

    args = dict(a.split("=", 1) for _, w, a in dockerfile if w == "ARG" and "=" in a)
    assert args["CUDA_SET"] == locks.DEFAULT_SET == "cuda13"
    for name in locks.SETS:
        assert (DOCKER / "locks" / f"{name}.txt").is_file(), f"set {name} has no docker/locks/{name}.txt"
    installs = [re.sub(r"\s+", " ", cmd).strip() for _, w, a in dockerfile if w == "RUN"
                for cmd in re.findall(r"python -m pip install [^&;]*", a)]
    assert installs == ["python -m pip install --upgrade pip",
                        "python -m pip install --require-hashes --only-binary=:all: -r docker/locks/${CUDA_SET}.txt",
                        "python -m pip install --no-deps -e ."], installs
    env = " ".join(a for _, w, a in dockerfile if w == "ENV")
    assert "PIP_CONSTRAINT" not in env, "a hashed lock as PIP_CONSTRAINT turns hash checking on for every later install"


def test_image_python_is_the_locks_target(dockerfile):
    """The locks hold wheels for one Python (locks.PYTHON): catches a base image moved to another
    Ubuntu release, whose python3 differs, without re-locking."""
    from techday.hub import locks

    ubuntu_python = {"22.04": "3.10", "24.04": "3.12"}   # python3 of each Ubuntu LTS
    args = dict(a.split("=", 1) for _, w, a in dockerfile if w == "ARG" and "=" in a)
    release = re.search(r"ubuntu:?(\d+\.\d+)$", args["BASE_IMAGE"]).group(1)
    assert ubuntu_python[release] == locks.PYTHON, \
        f"{args['BASE_IMAGE']}: python3 {ubuntu_python[release]}, the locks are for {locks.PYTHON}"


def test_image_enables_nbgrader_and_releases_the_course(dockerfile):
    runs = "\n".join(args for _, word, args in dockerfile if word == "RUN")
    assert "@jupyter/nbgrader" in runs and "techday build" in runs
    assert "chmod 1777 /srv/nbgrader/exchange" in runs, "writable by all, sticky: nobody renames another's entry"
    assert "chown -R 1500:1500 /srv/nbgrader/course" in runs, "the course root belongs to the grader user"
    env = " ".join(args for _, word, args in dockerfile if word == "ENV")
    assert "TECHDAY_BUILD=/srv/nbgrader" in env, "the course root lands in /srv/nbgrader/course"
    assert "TECHDAY_RELEASE=/srv/techday/release" in env, "the trainee image says where its released labs are"


def test_compose_matches_the_hub_config():
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    hub = compose["services"]["hub"]
    env = hub["environment"]
    config = (DOCKER / "jupyterhub_config.py").read_text()
    assert "/var/run/docker.sock:/var/run/docker.sock" in hub["volumes"]
    assert compose["volumes"]["techday-exchange"]["name"] == env["TECHDAY_EXCHANGE_VOLUME"]
    assert compose["networks"]["techday"]["name"] == env["TECHDAY_NETWORK"]
    assert f"techday-exchange:{'/srv/nbgrader/exchange'}" in hub["volumes"]
    assert "TECHDAY_GPUS" in env and "dockerspawner.DockerSpawner" in config
    assert hub["command"][-1] == "/srv/techday/docker/jupyterhub_config.py"
    for name in re.findall(r"TECHDAY_[A-Z_]+", config):
        assert name in env or name in ("TECHDAY_EXCHANGE", "TECHDAY_COURSE_ROOT"), \
            f"jupyterhub_config.py reads {name}; compose does not set it"
