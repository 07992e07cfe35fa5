"""docker/: the lab image's Dockerfile parses, pins what pyproject.toml asks for, installs as CI does;
the compose file and the hub config agree. (No Docker engine is needed: these read the files.)"""

import re
import shlex
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT
from tests.dockerbuild import INSTRUCTIONS, parse_dockerfile

DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def dockerfile():
    return parse_dockerfile((DOCKER / "Dockerfile").read_text())


def _pins():
    pins = {}
    for line in (DOCKER / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[name.strip().lower()] = version.strip()
    return pins


def _requirements(*extras):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


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


def test_dockerfile_base_is_cuda_12(dockerfile):
    args = dict(a.split("=", 1) for _, w, a in dockerfile if w == "ARG" and "=" in a)
    assert re.match(r"nvidia/cuda:12\.\d+\.\d+-", args["CUDA_IMAGE"]), args["CUDA_IMAGE"]


def test_every_pin_matches_pyproject():
    pins = _pins()
    reqs = _requirements("gpu", "hub")
    names = {r.name.lower() for r in reqs}
    assert not set(pins) - names, f"pinned but not required by pyproject.toml: {set(pins) - names}"
    for req in reqs:
        assert req.name.lower() in pins, f"{req.name} is required but not pinned in docker/constraints.txt"
        assert req.specifier.contains(pins[req.name.lower()], prereleases=True), \
            f"{req.name}=={pins[req.name.lower()]} does not satisfy pyproject.toml's {req}"


def _pip_installs(lines):
    """pip install commands, normalised: quiet flags dropped, the project's extras folded into `-e .`."""
    found = set()
    for line in lines:
        for cmd in re.findall(r"python -m pip install [^&;\n]*", line):
            words = [w for w in shlex.split(cmd) if w not in ("--quiet", "-q")]
            words = ["." if w.startswith(".[") else w for w in words]
            found.add(" ".join(words).strip())
    return found


def test_install_steps_are_the_ones_ci_runs(dockerfile):
    docker = _pip_installs(args for _, word, args in dockerfile if word == "RUN")
    ci = _pip_installs((ROOT / ".ci" / "run").read_text().splitlines())
    assert docker and docker <= ci, f"steps CI does not run: {docker - ci}"
    runs = " ".join(args for _, word, args in dockerfile if word == "RUN")
    assert re.search(r'pip install -e "\.\[gpu,hub\]"', runs), "the image installs the gpu and hub extras"
    env = " ".join(args for _, word, args in dockerfile if word == "ENV")
    assert "PIP_CONSTRAINT=/srv/techday/docker/constraints.txt" in env
    torch_ci = re.search(r"torch==([\w.+]+)", (ROOT / ".ci" / "run").read_text()).group(1)
    assert _pins()["torch"] == torch_ci, "the image and CI take the same PyTorch version"


def test_image_enables_nbgrader_and_releases_the_course(dockerfile):
    runs = "\n".join(args for _, word, args in dockerfile if word == "RUN")
    assert "@jupyter/nbgrader" in runs and "techday build" in runs
    assert "chmod 777 /srv/nbgrader/exchange" in runs
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
