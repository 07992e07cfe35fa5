"""What a trainee's container holds: the lab target of docker/Dockerfile, rebuilt here from the
Dockerfile's own COPY and build steps (tests/dockerbuild.py, no Docker), scanned for solutions, hidden
tests, wrong solutions, gradebooks and lab sources; and what the trainee's container or pod mounts, on
one server (DockerSpawner) and on Kubernetes (the chart's singleuser).

The grader target holds all of that on purpose: scanning it proves the scan sees what it looks for."""

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.dockerbuild import (
    DockerIgnore,
    ImageBuilder,
    SecretScanner,
    UnknownStep,
    image_target,
    insert_after_from,
)

pytestmark = [pytest.mark.slow]  # one `techday build` of every lab (about a minute on 2 cores)

DOCKERFILE = ROOT / "docker" / "Dockerfile"
TRAINEE, GRADER = "lab", "grader"

# Files that show the lab markup to explain it, with why. The markup checks skip them; the checks for the
# labs' own solution and hidden-test bodies, wrong solutions and lab sources still apply to them.
ALLOW_MARKUP = {"/srv/techday/README.md": "the README's 'Writing a lab' example (saxpy, not a lab of the course); "
                                          "pip reads README.md to install the package"}

# Leaks found in the course itself, to be fixed in the lab; each must still be found, so a fixed one
# fails here until it is taken off this list.
KNOWN_LEAKS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
    return ImageBuilder(DOCKERFILE.read_text(encoding="utf-8"), ROOT, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def scanner():
    return SecretScanner(ROOT, allow_markup=ALLOW_MARKUP)


def _report(name, result, scanned, hits):
    print(f"\n{name} target: {scanned} file(s) scanned, {len(hits)} hit(s)")
    for line in result.log:
        print(f"  {line}")
    for hit in hits:
        print(f"  HIT {hit}")


def test_trainee_image_holds_no_solution(builder, scanner):
    lab = builder.build(TRAINEE)
    scanned, hits = scanner.scan(lab.all_files())
    _report(TRAINEE, lab, scanned, hits)
    found = {(h.dest, h.what) for h in hits}
    unexpected = [str(h) for h in hits if (h.dest, h.what) not in KNOWN_LEAKS]
    assert not unexpected, "the trainee image holds what trainees must not see:\n" + "\n".join(unexpected)
    for key, why in KNOWN_LEAKS.items():
        print(f"  KNOWN LEAK (fix the lab): {key[0]}: {why}")
        assert key in found, f"fixed? {key} is no longer found: take it off KNOWN_LEAKS"
    assert scanned > 50 and scanner.bodies and scanner.wrong, "the scan looked at too little to mean anything"


def test_trainee_image_holds_what_a_trainee_needs(builder):
    from techday.course.syllabus import load_course

    lab = builder.build(TRAINEE)
    for lab_id in load_course(ROOT).labs:
        assert f"/srv/techday/release/{lab_id}/{lab_id}.ipynb" in lab.files, f"{lab_id} is not released into the image"
    for path in ("techday/__init__.py", "course/syllabus.toml", "course/assessment_thresholds.toml",
                 "benchmarks/stream.py", "pyproject.toml"):
        assert f"/srv/techday/{path}" in lab.files, path
    assert lab.env["TECHDAY_RELEASE"] == "/srv/techday/release" and lab.env["TECHDAY_ROOT"] == "/srv/techday"
    assert not any(f.dest.startswith("/srv/nbgrader/course") for f in lab.all_files())


def _release_languages(stage) -> dict[str, str]:
    """Each released notebook's language, as ``techday build`` records it (an English build records none)."""
    out = {}
    for f in stage.under("/srv/techday/release"):
        if f.dest.endswith(".ipynb"):
            meta = json.loads(f.disk.read_text(encoding="utf-8"))["metadata"].get("techday", {})
            out[f.dest] = meta.get("lang", "en")
    return out


def test_the_trainee_image_speaks_the_rooms_language(builder, tmp_path_factory):
    """The images are the Korean edition unless built for another room: every released notebook in Korean and the
    kernels told to speak it, and JupyterLab itself defaulting to it. Wrong answers caught: the Korean edition out
    of reach of a hub room (the release built in the syllabus' default English, nothing setting ``TECHDAY_LANG`` in
    a trainee's container: a Korean room read English notebooks and messages), notebooks in one language whose
    code prints in the other, and a Korean room whose JupyterLab (menus, dialogs) is English (no default locale
    written at build time, or ``ko_KR`` written into an English room), nbgrader's tab and buttons left as nbgrader wrote
    them (English in a Korean room), or rewritten differently per room (an English room's trainee who picks Korean
    would keep English nbgrader texts). And ``--build-arg TECHDAY_LANG=en`` gives
    the English room, all of it (tests/unit/test_lab_language.py starts a server with these settings)."""
    from techday.course.syllabus import load_course

    labs = set(load_course(ROOT).labs)
    bundles: dict[str, dict] = {}
    for lang, stage in (("ko", builder.build(TRAINEE)),
                        ("en", ImageBuilder(DOCKERFILE.read_text(encoding="utf-8"), ROOT,
                                            tmp_path_factory.mktemp("image-en"),
                                            build_args={"TECHDAY_LANG": "en"}).build(TRAINEE))):
        found = _release_languages(stage)
        assert {Path(dest).stem for dest in found} == labs, f"{lang}: released notebooks {sorted(found)}"
        wrong = {dest: got for dest, got in found.items() if got != lang}
        assert not wrong, f"the {lang} image released notebooks in another language: {wrong}"
        assert stage.env.get("TECHDAY_LANG") == lang, f"the {lang} image's kernels speak {stage.env.get('TECHDAY_LANG')!r}"
        # JupyterLab itself: its translation plugin's default locale in the environment's overrides
        overrides = f"{stage.env['VIRTUAL_ENV']}/share/jupyter/lab/settings/overrides.json"
        assert overrides in stage.files, f"the {lang} image sets no JupyterLab language ({overrides} missing)"
        locale = json.loads(stage.files[overrides].disk.read_text(encoding="utf-8")).get(
            "@jupyterlab/translation-extension:plugin", {}).get("locale")
        assert locale == {"ko": "ko_KR", "en": "en"}[lang], f"the {lang} image's JupyterLab defaults to {locale!r}"
        # nbgrader's own texts: its labextension rewritten to follow the page's language, the same bytes in both rooms
        from techday.hub.nbgraderlang import MARKER_RE

        ext = f"{stage.env['VIRTUAL_ENV']}/share/jupyter/labextensions/@jupyter/nbgrader/"
        patched = {dest: f.disk.read_bytes() for dest, f in stage.files.items() if dest.startswith(ext)}
        written = sorted(d for d, b in patched.items() if d.endswith(".js") and MARKER_RE.match(b.decode("utf-8")))
        assert len(written) == 2 and f"{ext}package.json" in patched and f"{ext}package.json.orig" in patched, (
            f"the {lang} image's nbgrader labextension is not rewritten to follow JupyterLab's language: {sorted(patched)}")
        load = json.loads(patched[f"{ext}package.json"])["jupyterlab"]["_build"]["load"]
        assert f"{ext}{load}" in written, f"the {lang} image's JupyterLab loads nbgrader's {load}, not the rewritten one"
        bundles[lang] = patched
        grader = (builder if lang == "ko" else ImageBuilder(DOCKERFILE.read_text(encoding="utf-8"), ROOT,
                                                            tmp_path_factory.mktemp("image-en-grader"),
                                                            build_args={"TECHDAY_LANG": "en"})).build(GRADER)
        assert overrides in grader.files and json.loads(grader.files[overrides].disk.read_text(encoding="utf-8"))[
            "@jupyterlab/translation-extension:plugin"]["locale"] == locale, f"the {lang} grader image's JupyterLab"
    assert bundles["ko"] == bundles["en"], "the rooms' nbgrader bundles differ: the choice must be the page's, at run time"


def test_grader_image_holds_the_course_root_and_the_scan_sees_it(builder, scanner):
    grader = builder.build(GRADER)
    scanned, hits = scanner.scan(grader.all_files())
    print(f"\n{GRADER} target: {scanned} file(s) scanned, {len(hits)} hit(s) (expected: it is the grader's)")
    what = " | ".join(h.what for h in hits)
    assert "/srv/nbgrader/course/gradebook.db" in grader.files and "SQLite" in what
    assert "a solution region marker" in what and "a hidden-test region marker" in what
    assert "copied from a lab source folder" in what and "lab source markup" in what


# Each line, added to the trainee stage, must be caught: (line, what the scan must report).
LEAKS = [
    ("COPY labs labs", "lab source markup"),
    ("COPY labs/01-numba-first-steps/01-numba-first-steps.py /srv/techday/notes.txt", "the bytes of labs/"),
    ("COPY tests/wrong_solutions/03-atomics-and-reductions.py /srv/techday/hints.py", "the body of a wrong solution"),
    ("COPY tests tests", "the test suite"),
    ("COPY grading grading", "the grading settings"),
    ("COPY --from=grader /srv/nbgrader/course /srv/nbgrader/course", "SQLite"),
    ("COPY --from=grader /srv/nbgrader/course/source /srv/techday/source", "a solution region marker"),
    ("COPY --from=grader /srv/nbgrader/course/source/01-numba-first-steps/01-numba-first-steps.ipynb "
     "/srv/techday/release/01-numba-first-steps/01-numba-first-steps.ipynb", "a hidden-test region marker"),
]


@pytest.mark.parametrize("line, expect", LEAKS, ids=["labs", "one-lab-source", "wrong-solution", "tests", "grading",
                                                     "course-root", "source", "source-as-release"])
def test_a_trainee_stage_that_leaks_is_caught(builder, scanner, line, expect):
    text = insert_after_from(DOCKERFILE.read_text(encoding="utf-8"), TRAINEE, line)
    variant = ImageBuilder(text, ROOT, builder.workdir)  # the grader stage is unchanged: its build is reused
    scanned, hits = scanner.scan(variant.build(TRAINEE).all_files())
    caught = [h for h in hits if expect in h.what]
    print(f"\n{line}: {scanned} file(s), {len(hits)} hit(s), e.g. {caught[0] if caught else None}")
    assert caught, f"{line!r} leaked without a {expect!r} hit"


def test_a_file_replaced_by_a_later_layer_is_still_scanned(builder, scanner):
    """The release is copied over a source notebook: the source stays in the lower layer, and is caught."""
    lab = "01-numba-first-steps"
    text = insert_after_from(DOCKERFILE.read_text(encoding="utf-8"), TRAINEE,
                             f"COPY --from=grader /srv/nbgrader/course/source/{lab} /srv/techday/release/{lab}")
    result = ImageBuilder(text, ROOT, builder.workdir).build(TRAINEE)
    assert any(f.origin.endswith(f"source/{lab}/{lab}.ipynb") for f in result.shadowed)
    _, hits = scanner.scan(result.all_files())
    assert any("solution region marker" in h.what for h in hits)


@pytest.mark.parametrize("line", [
    "RUN cp -r /srv/nbgrader /srv/techday/copy",
    "RUN curl -fsSL https://example.org/x.tar.gz | tar xz",
    "ADD https://example.org/solutions.zip /srv/techday/",
    "RUN echo hi > /srv/techday/notes.txt",
])
def test_a_step_the_emulation_does_not_know_stops_the_scan(builder, line):
    text = insert_after_from(DOCKERFILE.read_text(encoding="utf-8"), TRAINEE, line)
    with pytest.raises(UnknownStep):
        ImageBuilder(text, ROOT, builder.workdir).build(TRAINEE)


def test_dockerignore_keeps_accounts_and_local_state_out(tmp_path):
    ignore = DockerIgnore(ROOT)
    for path in ("docker/hub-users/passwords.csv", "docker/hub-users/users.csv", "passwords.csv",
                 "techday/__pycache__/cli.cpython-311.pyc", "build/course/gradebook.db", ".venv/bin/python"):
        assert ignore.ignored(path), path
    for path in ("techday/cli/main.py", "docker/jupyterhub_config.py", "course/syllabus.toml"):
        assert not ignore.ignored(path), path
    # The emulation honours it as Docker does: a `COPY docker docker` leaves the accounts behind.
    (tmp_path / "docker" / "hub-users").mkdir(parents=True)
    (tmp_path / "docker" / "hub-users" / "passwords.csv").write_text("username,role,password\n")
    (tmp_path / "docker" / "compose.yaml").write_text("name: x\n")
    (tmp_path / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    result = ImageBuilder("FROM scratch AS s\nWORKDIR /srv\nCOPY docker docker\n", tmp_path, tmp_path / "out").build("s")
    assert set(result.files) == {"/srv/docker/compose.yaml"}



def test_the_course_service_token_stays_out_of_the_images_and_git(tmp_path):
    # Wrong answer caught: the runbook puts TECHDAY_COURSE_SERVICE_TOKEN in docker/.env, and neither
    # .dockerignore nor .gitignore named it: the grader image built after it (`COPY docker docker`) held the
    # token, and `git add -A` offered it for a commit.
    import subprocess

    assert DockerIgnore(ROOT).ignored("docker/.env")
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / ".env").write_text("TECHDAY_COURSE_SERVICE_TOKEN=0123\n")
    (tmp_path / "docker" / "compose.yaml").write_text("name: x\n")
    (tmp_path / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    result = ImageBuilder("FROM scratch AS s\nWORKDIR /srv\nCOPY docker docker\n", tmp_path, tmp_path / "out").build("s")
    assert set(result.files) == {"/srv/docker/compose.yaml"}
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", "docker/.env"], cwd=ROOT)
    assert ignored.returncode == 0, "docker/.env is not in .gitignore"

# ------------------------------------------------------------------------------------- mounts


def k8s_singleuser_problems(values: dict, manifests: list[dict]) -> list[str]:
    """What a trainee's pod gets besides the lab image: volumes, copies, other images. Allowed: the
    exchange claim, memory-backed or empty scratch (emptyDir), the home volume the chart makes."""
    su = values["singleuser"]
    problems = []
    if image_target(su["image"]["name"]) != TRAINEE:
        problems.append(f"singleuser.image {su['image']['name']} is not the trainee image (target {TRAINEE})")
    exchange = su.get("extraEnv", {}).get("TECHDAY_EXCHANGE", "/srv/nbgrader/exchange")
    storage = su.get("storage", {})
    volumes = list(storage.get("extraVolumes", []))
    mounts = list(storage.get("extraVolumeMounts", []))
    copies = {f"singleuser.{k}": su[k] for k in ("initContainers", "lifecycleHooks", "extraFiles", "extraContainers")
              if su.get(k)}
    for profile in su.get("profileList", []):
        override = profile.get("kubespawner_override", {})
        volumes += override.get("volumes", [])
        mounts += override.get("volume_mounts", [])
        if "image" in override and image_target(override["image"]) != TRAINEE:
            problems.append(f"profile {profile.get('slug')}: image {override['image']} is not the trainee image")
        for key in ("init_containers", "lifecycle_hooks", "extra_containers"):
            if override.get(key):
                copies[f"profile {profile.get('slug')}: {key}"] = override[key]
    for where, what in copies.items():
        problems.append(f"{where} puts something into the trainee's pod that the image scan does not see: {what}")
    at = {m["name"]: m["mountPath"] for m in mounts}
    for v in volumes:
        name = v["name"]
        if "emptyDir" in v:
            continue
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim and claim == claim_of(manifests, exchange) and at.get(name) == exchange:
            continue  # the exchange: trainees fetch released labs and submit through it, by design
        problems.append(f"volume {name} ({', '.join(k for k in v if k != 'name')}"
                        f"{': ' + claim if claim else ''}) mounted at {at.get(name)}: only the exchange and scratch "
                        "space belong in a trainee's pod")
    return problems


def claim_of(manifests, mount_path):
    """The claim the grader mounts at ``mount_path`` (the exchange is shared with trainees by design)."""
    for d in manifests:
        if d.get("kind") != "Deployment":
            continue
        spec = d["spec"]["template"]["spec"]
        names = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", []) if m["mountPath"] == mount_path}
        for v in spec.get("volumes", []):
            if v["name"] in names and "persistentVolumeClaim" in v:
                return v["persistentVolumeClaim"]["claimName"]
    return None


@pytest.fixture(scope="module")
def k8s():
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the Kubernetes files")
    values = yaml.safe_load((ROOT / "docker" / "z2jh-values.yaml").read_text())
    manifests = [d for d in yaml.safe_load_all((ROOT / "docker" / "k8s-techday.yaml").read_text()) if d]
    return values, manifests


def test_k8s_trainee_pod_mounts_and_copies_nothing_of_the_course(k8s):
    values, manifests = k8s
    problems = k8s_singleuser_problems(values, manifests)
    print(f"\nsingleuser: image {values['singleuser']['image']['name']}, "
          f"{len(values['singleuser']['storage']['extraVolumes'])} extra volume(s), {len(problems)} problem(s)")
    assert problems == []
    deployment = next(d for d in manifests if d["kind"] == "Deployment")
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]
              + deployment["spec"]["template"]["spec"].get("initContainers", [])]
    assert {image_target(i) for i in images} == {GRADER}, f"the formgrader runs the grader image: {images}"


@pytest.mark.parametrize("change, expect", [
    (lambda v: v["singleuser"]["storage"]["extraVolumes"].append(
        {"name": "course", "persistentVolumeClaim": {"claimName": "techday-course"}}), "volume course"),
    (lambda v: v["singleuser"]["storage"]["extraVolumes"].append(
        {"name": "src", "hostPath": {"path": "/srv/techday/labs"}}), "hostPath"),
    (lambda v: v["singleuser"].update(lifecycleHooks={"postStart": {"exec": {"command": ["cp", "-r", "/x", "/y"]}}}),
     "lifecycleHooks"),
    (lambda v: v["singleuser"]["profileList"][0]["kubespawner_override"].update(
        image="registry.example.org/techday/grader:0.1.0"), "not the trainee image"),
    (lambda v: v["singleuser"]["image"].update(name="registry.example.org/techday/grader"), "not the trainee image"),
], ids=["course-claim", "host-path", "post-start-copy", "profile-image", "image"])
def test_k8s_check_catches_a_pod_that_would_leak(k8s, change, expect):
    import copy

    values, manifests = copy.deepcopy(k8s[0]), k8s[1]
    change(values)
    problems = k8s_singleuser_problems(values, manifests)
    assert any(expect in p for p in problems), problems


def trainee_container_problems(cfg) -> list[str]:
    """One server: what DockerSpawner gives each trainee's container (image and volumes)."""
    problems = []
    if image_target(cfg.DockerSpawner.image) != TRAINEE:
        problems.append(f"DockerSpawner.image {cfg.DockerSpawner.image} is not the trainee image")
    for volume, path in cfg.DockerSpawner.volumes.items():
        if not (volume.startswith("techday-home-") or path == str(cfg.TechDayHub.settings["exchange"])):
            problems.append(f"volume {volume} at {path}: only the trainee's home and the exchange")
    return problems


def test_compose_trainee_container_gets_the_trainee_image_and_no_course(monkeypatch, tmp_path):
    pytest.importorskip("dockerspawner", reason="the hub extra is not installed")
    from techday.hub.config import load_hub_config

    monkeypatch.setenv("TECHDAY_HUB_STATE", str(tmp_path))
    monkeypatch.delenv("TECHDAY_IMAGE", raising=False)
    cfg = load_hub_config(ROOT / "docker" / "jupyterhub_config.py")
    assert trainee_container_problems(cfg) == []
    monkeypatch.setenv("TECHDAY_IMAGE", "techday-grader:latest")  # the wrong image is caught
    assert "not the trainee image" in " ".join(trainee_container_problems(load_hub_config(ROOT / "docker" / "jupyterhub_config.py")))
    cfg.DockerSpawner.volumes = {**cfg.DockerSpawner.volumes, "techday-course": "/srv/nbgrader/course"}
    assert "techday-course" in " ".join(trainee_container_problems(cfg))


def test_images_exist_as_dockerfile_targets():
    from tests.dockerbuild import parse_dockerfile, stages

    names = set(stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))))
    assert {TRAINEE, GRADER, "k8s-hub"} <= names, names
    assert image_target("techday-lab:latest") == TRAINEE and image_target("reg.example/techday/grader:1") == GRADER
    assert image_target("registry.example.org:5000/techday/k8s-hub:0.1.0") == "k8s-hub"
