"""What the delivery files name is real and agrees: every repository path that docker/ and the runbook
name exists; every image name stands for the Dockerfile target it should; the Zero to JupyterHub chart
version is pinned, and the chart's JupyterHub, the hub image built on it and the trainees' image agree."""

import re
import shlex

import pytest

from tests.conftest import ROOT
from tests.dockerbuild import DockerIgnore, image_target, parse_dockerfile, stages

DOCKER = ROOT / "docker"
# The files that name paths for a person to use: the manifests, the Dockerfile, the hub config, the docs.
DOCS = sorted(DOCKER.glob("*.yaml")) + [DOCKER / "Dockerfile", DOCKER / "jupyterhub_config.py",
                                         DOCKER / "README.md", ROOT / "course" / "RUNBOOK.md"]
NOT_SOURCE = {".git", "build", ".venv", "__pycache__", ".pytest_cache", ".whl"}
TOP = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in NOT_SOURCE and not p.name.endswith(".egg-info"))
# A repository path: starts with a top folder, whole (not a piece of a longer word), not a label key
# (`techday/gpu: whole` in a node selector is a Kubernetes label).
PATH = re.compile(r"(?<![\w./$-])((?:%s)/[\w./-]*\w)(?![\w./-]|:\s)" % "|".join(re.escape(t) for t in TOP))
IN_IMAGE = re.compile(r"/srv/techday/([\w./-]*\w)(?![\w./-])")


def _read(path):
    return path.read_text(encoding="utf-8")


def generated(texts) -> set[str]:
    """Folders and files the documented commands create (``techday hub users --out DIR``, ``... >> FILE``)
    and the image build makes under /srv/techday (a ``COPY --from`` destination): named before they exist."""
    texts = list(texts)
    made = {m for text in texts for m in re.findall(r"techday hub users [^\n`]*?--out (\S+)", text)}
    made |= {m for text in texts for m in re.findall(r">>\s*([\w./-]+)", text)}
    for _, word, args in parse_dockerfile(_read(DOCKER / "Dockerfile")):
        if word == "COPY" and args.startswith("--from"):
            made |= set(IN_IMAGE.findall(shlex.split(args)[-1]))
    return made


def missing_paths(text: str, made: set[str]) -> list[str]:
    """Repository paths (``docker/x.yaml``, ``/srv/techday/docker/x.py`` in an image) that do not exist."""
    found = set(PATH.findall(text)) | set(IN_IMAGE.findall(text))
    out = []
    for rel in sorted(found):
        rel = rel.rstrip(".")
        if any(rel == g or rel.startswith(g.rstrip("/") + "/") for g in made):
            continue
        if not (ROOT / rel).exists():
            out.append(rel)
    return out


def test_the_path_check_catches_a_file_that_is_not_there():
    text = "kubectl apply -f docker/k8s-exchange.yaml; see course/RUNBOOK.md and /srv/techday/docker/nope.py"
    assert missing_paths(text, set()) == ["docker/k8s-exchange.yaml", "docker/nope.py"]
    assert missing_paths("mounts docker/hub-users/users.csv", {"docker/hub-users"}) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_path_a_delivery_file_names_exists(doc):
    made = generated(_read(p) for p in DOCS)
    missing = missing_paths(_read(doc), made)
    assert not missing, f"{doc.relative_to(ROOT)} names paths that are not in the repository: {missing}"


def test_compose_bind_mounts_exist_or_are_made_by_a_documented_command():
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")
    compose = yaml.safe_load(_read(DOCKER / "compose.yaml"))
    made = generated(_read(p) for p in DOCS)
    binds = [v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])
             if v.startswith((".", "/"))]
    assert binds, "compose binds the accounts folder at least"
    for source in binds:
        if source.startswith("/"):
            continue  # a host path (the Docker socket)
        rel = (DOCKER / source).resolve().relative_to(ROOT).as_posix()
        inside_made = any(rel.startswith(m + "/") for m in made)   # users.csv in the folder `hub users` makes
        assert (ROOT / rel).exists() or rel in made or inside_made, f"compose mounts {source} ({rel}): nothing makes it"


def test_every_copy_source_exists_and_is_in_the_build_context():
    ignore = DockerIgnore(ROOT)
    copies = 0
    for n, word, args in parse_dockerfile(_read(DOCKER / "Dockerfile")):
        if word in ("COPY", "ADD") and "--from" not in args:
            for src in shlex.split(args)[:-1]:
                copies += 1
                assert (ROOT / src).exists(), f"Dockerfile:{n}: {word} {src}: not in the repository"
                assert not ignore.ignored(src), f"Dockerfile:{n}: {word} {src}: .dockerignore leaves it out"
    assert copies >= 10


def test_docker_readme_lists_exactly_the_files_of_docker():
    table = re.findall(r"^\| `([^`]+)` \|", _read(DOCKER / "README.md"), re.M)
    listed = {name for name in table if not name.startswith("techday-")}
    on_disk = {p.relative_to(DOCKER).as_posix() for p in DOCKER.rglob("*")
               if p.is_file() and p.name != "README.md" and "__pycache__" not in p.parts and "hub-users" not in p.parts}
    assert listed == on_disk, f"listed, not there: {listed - on_disk}; there, not listed: {on_disk - listed}"


# ------------------------------------------------------------------------------------------ images


def build_commands(text: str) -> list[tuple[str, str]]:
    """(target, -t name) of every ``docker build`` the text shows (comments included)."""
    out = []
    for cmd in re.findall(r"docker build [^\n`]*", text):
        words = shlex.split(cmd.split("#")[0])
        target = words[words.index("--target") + 1] if "--target" in words else ""
        tag = words[words.index("-t") + 1] if "-t" in words else ""
        out.append((target, tag))
    return out


def test_every_documented_build_names_its_target():
    targets = set(stages(parse_dockerfile(_read(DOCKER / "Dockerfile"))))
    seen = []
    for doc in DOCS + [ROOT / "README.md"]:
        for target, tag in build_commands(_read(doc)):
            seen.append((doc.name, target, tag))
            assert target in targets, f"{doc.name}: `docker build -t {tag}` names no --target (or an unknown one)"
            assert image_target(tag) == target, f"{doc.name}: {tag} is built from target {target}"
    assert {t for _, t, _ in seen} >= {"lab", "grader", "k8s-hub"}, seen
    assert build_commands("docker build -f docker/Dockerfile -t techday-lab:latest .") == [("", "techday-lab:latest")]


def test_each_place_runs_the_image_it_should():
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the manifests")
    compose = yaml.safe_load(_read(DOCKER / "compose.yaml"))
    default = lambda value: re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", value)  # noqa: E731
    hub = compose["services"]["hub"]
    assert image_target(default(hub["image"])) == "grader", "the hub container holds the course root"
    assert image_target(default(hub["environment"]["TECHDAY_IMAGE"])) == "lab", "DockerSpawner starts trainees"
    config = _read(DOCKER / "jupyterhub_config.py")
    spawner = re.search(r'DockerSpawner\.image = os\.environ\.get\("TECHDAY_IMAGE", "([^"]+)"\)', config).group(1)
    assert image_target(spawner) == "lab"

    values = yaml.safe_load(_read(DOCKER / "z2jh-values.yaml"))
    assert image_target(values["hub"]["image"]["name"]) == "k8s-hub"
    assert image_target(values["singleuser"]["image"]["name"]) == "lab"
    manifests = [d for d in yaml.safe_load_all(_read(DOCKER / "k8s-techday.yaml")) if d]
    pod = next(d for d in manifests if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    pulled = [c["image"] for c in pod["containers"] + pod.get("initContainers", [])]
    assert {image_target(i) for i in pulled} == {"grader"}

    # The Kubernetes names are the ones the runbook builds and pushes.
    built = {tag for _, tag in build_commands(_read(ROOT / "course" / "RUNBOOK.md"))}
    for ref in [f"{values['hub']['image']['name']}:{values['hub']['image']['tag']}",
                f"{values['singleuser']['image']['name']}:{values['singleuser']['image']['tag']}", *pulled]:
        assert ref in built, f"{ref} is pulled on Kubernetes but the runbook never builds it"


def test_commands_that_need_the_lab_sources_run_in_the_grader_image():
    """The lab image has no labs/: `techday validate`, `build`, `run` or `grade` there would fail."""
    for doc in DOCS + [ROOT / "course" / "INSTRUCTORS.md"]:
        for image, sub in re.findall(r"docker run [^\n`]*?(\S+:\S+) techday (\w+)", _read(doc)):
            if sub in ("validate", "build", "run", "grade"):
                assert image_target(image) == "grader", f"{doc.name}: techday {sub} in {image}"


# ---------------------------------------------------------------------------------------- versions


def _z2jh_app_version():
    from tests.unit.test_z2jh_values import Z2JH

    readme = Z2JH / "README.md"
    if not readme.is_file():
        pytest.skip(f"the chart's reference data is not here ({Z2JH}): cannot read its JupyterHub version")
    m = re.search(r"appVersion (\d+\.\d+\.\d+)", _read(readme))
    assert m, f"{readme} does not state the chart's appVersion"
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the chart's values")
    return m.group(1), yaml.safe_load(_read(Z2JH / "values.yaml"))["hub"]["image"]["name"]


def jupyterhub_pins() -> dict[str, str]:
    """JupyterHub as the images install it: every locked set (docker/locks/)."""
    pins = {}
    for path in sorted((DOCKER / "locks").glob("*.txt")):
        if path.is_file():
            m = re.search(r"^jupyterhub==([\w.]+)", _read(path), re.M)
            if m:
                pins[path.relative_to(ROOT).as_posix()] = m.group(1)
    return pins


def version_problems(docs: dict[str, str], dockerfile: str, pins: dict[str, str], app_version: str,
                     hub_repo: str) -> list[str]:
    """The chart pinned everywhere to one version; its hub image, its JupyterHub and the images' agree."""
    problems = []
    helm = [(name, cmd) for name, text in docs.items()
            for cmd in re.findall(r"helm (?:upgrade --install|install) [^\n]*jupyterhub/jupyterhub[^\n]*", text)]
    if not helm:
        problems.append("no `helm upgrade --install ... jupyterhub/jupyterhub` command in the docs")
    versions = {}
    for name, cmd in helm:
        m = re.search(r"--version[ =](\S+)", cmd)
        if not m:
            problems.append(f"{name}: `{cmd[:60]}...` installs whatever chart is newest: pin --version")
        else:
            versions.setdefault(m.group(1), []).append(name)
    if len(versions) > 1:
        problems.append(f"the docs install different chart versions: {versions}")
    chart = next(iter(versions), None)
    mentioned = {(name, v) for name, text in docs.items() for v in re.findall(r"[Cc]hart (\d+\.\d+\.\d+)", text)}
    problems += [f"{name} says chart {v}, the helm commands install {chart}" for name, v in mentioned if v != chart]
    for name, text in docs.items():
        for v, hub in re.findall(r"[Cc]hart (\d+\.\d+\.\d+), whose hub runs JupyterHub (\d+\.\d+\.\d+)", text):
            if hub != app_version:
                problems.append(f"{name}: chart {v} is said to run JupyterHub {hub}; the chart's appVersion is {app_version}")
    arg = re.search(r"^ARG K8S_HUB_IMAGE=(\S+)", dockerfile, re.M)
    if not arg:
        problems.append("the Dockerfile has no ARG K8S_HUB_IMAGE")
    else:
        repo, _, tag = arg.group(1).rpartition(":")
        if repo != hub_repo:
            problems.append(f"k8s-hub is built FROM {repo}, not the chart's hub image {hub_repo}")
        if tag != chart:
            problems.append(f"k8s-hub is built FROM the hub image of chart {tag}; the docs install chart {chart}")
    if not pins:
        problems.append("the images pin no JupyterHub version")
    for where, pin in pins.items():
        if pin.split(".")[:2] != app_version.split(".")[:2]:
            problems.append(f"{where} pins jupyterhub=={pin}; the chart's hub runs {app_version}: trainees' "
                            "servers and the hub must be the same JupyterHub series")
    return problems


def _delivery_docs():
    return {p.relative_to(ROOT).as_posix(): _read(p) for p in DOCS}


def test_chart_hub_image_and_trainee_jupyterhub_agree():
    app_version, hub_repo = _z2jh_app_version()
    problems = version_problems(_delivery_docs(), _read(DOCKER / "Dockerfile"), jupyterhub_pins(), app_version, hub_repo)
    print(f"\nchart appVersion {app_version}, hub image {hub_repo}, trainees' JupyterHub {jupyterhub_pins()}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("change, expect", [
    (lambda d, f, p: (d, f, {**p, "docker/locks/cuda13.txt": "6.1.1"}), "same JupyterHub series"),
    (lambda d, f, p: (d, f.replace("k8s-hub:4.4.0", "k8s-hub:4.2.0"), p), "hub image of chart 4.2.0"),
    (lambda d, f, p: ({k: v.replace("--version 4.4.0 ", "") for k, v in d.items()}, f, p), "pin --version"),
    (lambda d, f, p: ({**d, "x.md": "helm upgrade --install t jupyterhub/jupyterhub --version 4.3.0 -f v"}, f, p),
     "different chart versions"),
    (lambda d, f, p: ({**d, "x.md": "Chart 4.4.0, whose hub runs JupyterHub 5.4.0"}, f, p), "appVersion"),
], ids=["trainee-jupyterhub-6", "old-hub-image", "unpinned-helm", "two-charts", "wrong-app-version"])
def test_version_check_catches_a_disagreement(change, expect):
    app_version, hub_repo = _z2jh_app_version()
    docs, dockerfile, pins = change(_delivery_docs(), _read(DOCKER / "Dockerfile"), jupyterhub_pins())
    problems = version_problems(docs, dockerfile, pins, app_version, hub_repo)
    assert any(expect in p for p in problems), problems
