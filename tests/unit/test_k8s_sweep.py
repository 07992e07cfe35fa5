"""The chart's exchange sweep (docker/k8s-techday.yaml, CronJob ``techday-exchange-sweep``) is the hub's sweep of
docker/compose.yaml, on Kubernetes: the same exchange, the same accounts, the trainees' own budget, as root with
no more than root needs to read and remove other uids' files, one pass a minute, a failing pass a failed Job.

Without a cluster here (no kubectl, no network) every check reads the manifests; the last ones run the CronJob's
own command line (argv and environment from the manifest, its paths remapped to a temporary exchange) as root
with only the manifest's capabilities and a read-only root filesystem, the way the container runs it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.dockerbuild import image_target

yaml = pytest.importorskip("yaml", reason="PyYAML reads the manifests")

MANIFEST = ROOT / "docker" / "k8s-techday.yaml"
VALUES = ROOT / "docker" / "z2jh-values.yaml"
SWEEP = "techday-exchange-sweep"
TRAINEE = "trainee-a"
TRAINEE_UID = 20077


def manifests() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]


def named(kind: str, name: str | None = None, docs: list[dict] | None = None) -> dict:
    found = [d for d in (docs or manifests()) if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"docker/k8s-techday.yaml: {len(found)} {kind} named {name}"
    return found[0]


def cronjob() -> dict:
    return named("CronJob", SWEEP)


def pod_spec(job: dict | None = None) -> dict:
    return (job or cronjob())["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container(job: dict | None = None) -> dict:
    (c,) = pod_spec(job)["containers"]
    return c


def values() -> dict:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def resolve_env(entries, docs: list[dict]) -> dict[str, str | None]:
    """A container's environment as the kubelet makes it: ``value``, or ``valueFrom.configMapKeyRef`` read from the
    ConfigMap in ``docs`` (an optional key that is not there: unset, None here). Anything else is not a source this
    product uses for these variables, and fails."""
    if isinstance(entries, dict):   # the chart's singleuser.extraEnv: NAME: "value" or NAME: {valueFrom: ...}
        entries = [{"name": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in entries.items()]
    out = {}
    for e in entries:
        if "value" in e:
            out[e["name"]] = str(e["value"])
            continue
        ref = e["valueFrom"]["configMapKeyRef"]
        data = named("ConfigMap", ref["name"], docs).get("data", {})
        assert ref["key"] in data or ref.get("optional"), f"{e['name']}: no key {ref['key']} in ConfigMap {ref['name']}"
        out[e["name"]] = data.get(ref["key"])
    return out


def budget_refs(entries) -> dict[str, tuple[str, str]]:
    """Each ``TECHDAY_EXCHANGE_*`` budget variable of an env list or of the chart's extraEnv map: (ConfigMap, key),
    or ("value", literal)."""
    from techday.hub.exchangequota import SETTINGS

    names = {s[0] for s in SETTINGS}
    if isinstance(entries, dict):
        entries = [{"name": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in entries.items()]
    out = {}
    for e in entries:
        if e["name"] in names or e["name"].startswith("TECHDAY_EXCHANGE_"):
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            out[e["name"]] = (ref["name"], ref["key"]) if ref else ("value", str(e.get("value")))
    return out


# ------------------------------------------------------------------------------------------------ the manifest


def test_the_manifest_parses_and_holds_one_sweep_that_runs_each_minute():
    """Caught: no sweep on Kubernetes at all (the hub pod does not mount the exchange, the grader is not root): a
    trainee writing into ``inbound`` by hand filled the exchange's claim, and nothing outside their processes
    removed a byte. Now docker/k8s-techday.yaml holds one CronJob of the batch/v1 API, each minute."""
    job = cronjob()
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["schedule"] == "* * * * *", "one pass a minute, as compose's `--every 60`"
    assert job["spec"].get("suspend") is not True


def test_the_sweep_mounts_the_claim_the_trainees_submit_into_at_TECHDAY_EXCHANGE():
    """Caught: a CronJob mounting another claim (or the right claim at another path than ``TECHDAY_EXCHANGE``)
    sweeps nothing: every Job succeeds with "no inbound yet" while the trainees' exchange fills. The claim mounted
    where the sweep's ``TECHDAY_EXCHANGE`` points is the one the chart's trainee pods mount at theirs, and the
    course is theirs (``TECHDAY_COURSE_ID``)."""
    docs = manifests()
    env = resolve_env(container()["env"], docs)
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert env["TECHDAY_EXCHANGE"] in mounts, f"nothing is mounted at TECHDAY_EXCHANGE={env['TECHDAY_EXCHANGE']}"
    mine = volumes[mounts[env["TECHDAY_EXCHANGE"]]["name"]]["persistentVolumeClaim"]["claimName"]

    user = values()["singleuser"]
    theirs_at = resolve_env(user["extraEnv"], docs)["TECHDAY_EXCHANGE"]
    their_mounts = {m["mountPath"]: m["name"] for m in user["storage"]["extraVolumeMounts"]}
    their_volumes = {v["name"]: v for v in user["storage"]["extraVolumes"]}
    theirs = their_volumes[their_mounts[theirs_at]]["persistentVolumeClaim"]["claimName"]
    assert mine == theirs == "techday-exchange", (mine, theirs)
    assert named("PersistentVolumeClaim", mine, docs)["spec"]["accessModes"] == ["ReadWriteMany"]
    assert not mounts[env["TECHDAY_EXCHANGE"]].get("readOnly"), "the sweep removes: its exchange is writable"
    assert not mounts[env["TECHDAY_EXCHANGE"]].get("subPath"), "the whole claim, as the trainees mount it"
    assert env["TECHDAY_COURSE_ID"] == resolve_env(user["extraEnv"], docs)["TECHDAY_COURSE_ID"]
    assert env["TECHDAY_COURSE_ID"] == values()["hub"]["config"]["PasswordListAuthenticator"]["course_id"]


def test_the_sweep_reads_the_hubs_accounts_file():
    """Caught: a sweep with no accounts file fails every pass; one with another file (or another secret) misreads
    whose name is whose: an entry named for trainee B but written by A is a plant only when the file gives B
    another uid. ``TECHDAY_USERS_FILE`` is ``users.csv`` in the secret the hub mounts for its sign-in, read-only."""
    env = resolve_env(container()["env"], manifests())
    path = Path(env["TECHDAY_USERS_FILE"])
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    mount = mounts[str(path.parent)]
    assert mount.get("readOnly") is True
    secret = {v["name"]: v for v in pod_spec()["volumes"]}[mount["name"]]["secret"]["secretName"]
    hub = values()["hub"]
    hub_secret = {v["name"]: v for v in hub["extraVolumes"]}
    hub_mount = {m["name"]: m["mountPath"] for m in hub["extraVolumeMounts"]}
    users_file = Path(hub["config"]["PasswordListAuthenticator"]["users_file"])
    (hub_volume,) = [n for n, at in hub_mount.items() if at == str(users_file.parent)]
    assert secret == hub_secret[hub_volume]["secret"]["secretName"] == "techday-users"
    assert path.name == users_file.name


def test_the_sweeps_command_is_one_real_pass_of_techday_hub_sweep():
    """Caught: a command the image runs but techday does not mean: a misspelt sub-command (every Job fails with a
    usage error), ``--dry-run`` left in (every pass removes nothing, every Job succeeds), ``--every 60`` (the Job
    never ends: Forbid holds every next pass until the deadline kills it, and no pass ever says it failed). The
    command parses with techday's own parser to one pass of ``hub sweep``, under tini (PID 1 that forwards the
    deadline's SIGTERM: a Python PID 1 ignores it)."""
    from techday.cli.hub import cmd_hub_sweep
    from techday.cli.main import parser

    argv = [*container().get("command", []), *container().get("args", [])]
    assert argv[:2] == ["tini", "--"], argv
    assert argv[2] == "techday", argv
    # both programs are in the image: tini from the base stage's packages, techday the project's own script
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"apt-get install [^\n]*(\\\n[^\n]*)*\btini\b", dockerfile), "the image installs no tini"
    assert re.search(r'^techday = "techday\.cli\.main:main"', (ROOT / "pyproject.toml").read_text(), re.M)
    args = parser().parse_args(argv[3:])
    assert args.fn is cmd_hub_sweep
    assert args.every == 0 and args.dry_run is False, args


def test_the_sweep_holds_the_trainees_to_their_own_budget():
    """Caught: a budget written twice drifts: a sweep whose ``TECHDAY_EXCHANGE_QUOTA`` is below the trainees' (whose
    submit accepted their work) removes honest submissions each minute; one above it, or a variable set on one side
    only (a default on the other), lets a trainee keep what their submit refused. Both read each variable from the
    one ConfigMap ``techday-exchange-budget``, by the same key, every budget variable and no other, and its values
    are a budget the product accepts (``Budget.from_env``)."""
    from techday.hub.exchangequota import SETTINGS, Budget

    docs = manifests()
    mine = budget_refs(container()["env"])
    theirs = budget_refs(values()["singleuser"]["extraEnv"])
    names = {s[0] for s in SETTINGS}
    assert set(mine) == set(theirs) == names, (mine, theirs)
    assert mine == theirs, "the sweep and the trainees' pods read the budget from different places"
    assert {src for src, _ in mine.values()} == {"techday-exchange-budget"}
    assert all(key == name for name, (_, key) in mine.items())
    assert not container().get("envFrom"), "every variable by name: a stray key in a ConfigMap changes nothing"
    data = named("ConfigMap", "techday-exchange-budget", docs)["data"]
    assert set(data) == names
    Budget.from_env(data)   # a value the sweep would refuse fails the Jobs, and the trainees' submits, all day
    assert resolve_env(container()["env"], docs).items() >= data.items()
    assert {k: v for k, v in resolve_env(values()["singleuser"]["extraEnv"], docs).items() if k in names} == data


def test_the_sweep_runs_as_root_with_only_what_removing_other_uids_files_takes():
    """Caught: two opposite mistakes. Not root (the grader's 1500, ``runAsNonRoot``): the sweep can list nothing in
    ``inbound`` (3733) and remove nothing of a trainee's (0750, theirs), so every Job fails. Root with the runtime's
    default capabilities (CHOWN, SETUID, KILL, NET_RAW, ...) or privileged: a process that reads trainee-shaped trees
    could do more than read and remove them. Now: root, every capability dropped but DAC_OVERRIDE (read and write
    folders it does not own: a trainee's 0700 entry) and FOWNER (remove in sticky folders it does not own:
    ``inbound`` is 3733, and a trainee may make their own sub-folders sticky), no escalation, no service account
    token, a read-only root filesystem, no host path, the grader deployment's image. (Each of the two is needed:
    test_each_listed_capability_is_needed runs the pass without it.)"""
    spec, c = pod_spec(), container()
    ctx = {**spec.get("securityContext", {}), **c.get("securityContext", {})}
    assert ctx["runAsUser"] == 0 and ctx.get("runAsNonRoot") is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert sorted(ctx["capabilities"]["add"]) == ["DAC_OVERRIDE", "FOWNER"]
    assert ctx["allowPrivilegeEscalation"] is False and not ctx.get("privileged")
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    assert not spec.get("hostPID") and not spec.get("hostNetwork") and not spec.get("hostIPC")
    assert all("hostPath" not in v for v in spec["volumes"])
    assert "fsGroup" not in spec.get("securityContext", {}), "the kubelet would change the exchange's group"
    grader = named("Deployment", "techday-grader")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert c["image"] == grader and image_target(c["image"]) == "grader"


def test_one_pass_at_a_time_each_bounded_each_failure_kept():
    """Caught: ``concurrencyPolicy: Allow`` (the default) starts the next pass while a slow one still removes, two
    roots racing over the same entries; no deadline lets a pass hung on the claim (an NFS server gone) hold Forbid's
    lock for good, so nothing is swept again and nothing fails; retries (``backoffLimit``) hide a failing pass behind
    a later success; unbounded history fills the namespace with a Job a minute. Now: Forbid, a start deadline under
    the minute (a pass missed is skipped, not queued), a run deadline, no retry, a failed pod kept to be read, and a
    few Jobs of each outcome kept."""
    spec = cronjob()["spec"]
    job = spec["jobTemplate"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 60
    assert 0 < job.get("activeDeadlineSeconds", 0) <= 600, "a pass with no deadline can hold Forbid's lock for good"
    assert job["backoffLimit"] == 0 and pod_spec()["restartPolicy"] == "Never"
    assert 1 <= spec["successfulJobsHistoryLimit"] <= 5 and 1 <= spec["failedJobsHistoryLimit"] <= 10
    assert "ttlSecondsAfterFinished" not in job, "a failed Job must stay for `kubectl get jobs` to show it"
    limits = container()["resources"]["limits"]
    assert "memory" in limits


# ------------------------------------------------------------------------------------------ the pass itself


def _exchange(base: Path, course: str) -> Path:
    """``base/exchange`` as the chart's exchange holds it (1777), with the course's folder and its ``inbound``
    the grader's (test_exchange_quota's ``_graders_inbound``), and trainee A over the budget: five hand-ins of one
    lab (nbgrader's modes, A's uid) and an entry made by hand, 0700, with a sticky sub-folder of A's."""
    from techday.hub import exchange as ex
    from tests.unit.test_exchange_quota import _entry, _graders_inbound

    exchange = base / "exchange"
    _graders_inbound(base / "made")
    exchange.mkdir()
    exchange.chmod(0o1777)
    os.rename(base / "made" / "c", exchange / course)
    inbound = exchange / course / "inbound"
    for m in range(5):
        entry = _entry(inbound, f"{TRAINEE}+lab+2026-12-07 10:0{m}:00.000000 UTC+r{m}", 1000)
        os.chown(entry / "lab.ipynb", TRAINEE_UID, 1500)
        (entry / "lab.ipynb").chmod(ex.SUBMISSION_FILE)
        os.chown(entry, TRAINEE_UID, 1500)
        entry.chmod(ex.SUBMISSION_DIR)
    hand = inbound / "by-hand"
    (hand / "sticky").mkdir(parents=True)
    (hand / "sticky" / "f").write_text("x")
    for p in (hand / "sticky" / "f", hand / "sticky", hand):
        os.lchown(p, TRAINEE_UID, 100)
    (hand / "sticky").chmod(0o1700)
    hand.chmod(0o700)
    return inbound


def _users(folder: Path) -> None:
    from techday.hub.config import hash_password

    # as a secret volume presents it: users.csv a link into the current ..data folder
    (folder / "..data").mkdir(parents=True)
    line = f"{TRAINEE},trainee,{hash_password('x', iterations=1000)},{TRAINEE_UID}\n"
    (folder / "..data" / "users.csv").write_text("username,role,password_hash,uid\n" + line)
    (folder / "users.csv").symlink_to("..data/users.csv")


def _run_the_cronjob(tmp_path: Path, caps: list[str]) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the CronJob's container command as the container would: argv and environment from the manifest (the
    ConfigMap's budget resolved), the exchange claim and the users secret remapped to temporary folders at the
    manifest's mount paths' places, as root with the bounding set cut to ``caps`` and no new privileges, in a mount
    namespace of its own where everything but the exchange is read-only (``readOnlyRootFilesystem``)."""
    if os.geteuid() != 0:
        pytest.skip(f"running the sweep as root with chosen capabilities needs root (this is uid {os.geteuid()})")
    for tool in ("unshare", "setpriv", "mount"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)):
            pytest.skip(f"no {tool} here: cannot run the sweep with the container's capabilities and read-only root")
    docs = manifests()
    c = container()
    env = resolve_env(c["env"], docs)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    inbound = _exchange(tmp_path, env["TECHDAY_COURSE_ID"])
    users = tmp_path / "users"
    _users(users)
    remap = {}
    for at, name in mounts.items():
        if "persistentVolumeClaim" in volumes[name]:
            remap[at] = str(inbound.parent.parent)
        elif "secret" in volumes[name]:
            remap[at] = str(users)
    assert set(remap) == set(mounts), f"a mount the test does not stand in for: {mounts}"

    def mapped(value: str) -> str:
        for at, here in remap.items():
            if value == at or value.startswith(at + "/"):
                return here + value[len(at):]
        return value

    child = {k: mapped(v) for k, v in env.items() if v is not None}
    child.update(PATH=os.environ["PATH"], PYTHONPATH=str(ROOT), TECHDAY_LANG="en", HOME="/nonexistent")
    argv = [*c.get("command", []), *c.get("args", [])]
    assert argv[:3] == ["tini", "--", "techday"], argv
    command = [sys.executable, "-m", "techday", *argv[3:]]   # tini is PID 1's helper, not here
    ctx = {**pod_spec().get("securityContext", {}), **c["securityContext"]}
    assert ctx["readOnlyRootFilesystem"] is True
    keep = ",".join(f"+{cap.lower()}" for cap in caps)
    setpriv = ["setpriv", "--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all",
               f"--bounding-set=-all{',' + keep if keep else ''}"]
    exchange = shlex.quote(str(inbound.parent.parent))
    script = (f"mount --bind {exchange} {exchange} && mount -o remount,bind,ro / && "
              f"if touch {shlex.quote(str(tmp_path / 'probe'))} 2>/dev/null; then echo ROOT-WRITABLE; exit 97; fi; "
              f"exec {shlex.join(setpriv + command)}")
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                         text=True, timeout=180, env=child, cwd="/")
    if out.returncode == 97 or ("mount" in out.stderr and "techday hub sweep" not in out.stdout + out.stderr):
        pytest.skip(f"cannot make the root filesystem read-only in a mount namespace here: {out.stderr.strip()[-200:]}")
    print(f"caps {caps}: rc {out.returncode}\n{out.stdout}{out.stderr}")
    return out, inbound


def test_the_cronjobs_own_command_removes_the_excess_as_the_container_runs_it(tmp_path):
    """Caught, end to end: everything above could hold and the pass still not work as the container runs it (a
    capability missing, a write outside the exchange on a read-only root, the budget not reaching the process, a
    path that does not line up). The manifest's argv and environment, as root with only the manifest's
    capabilities and a read-only root: trainee A's five hand-ins of a lab become the newest three (the
    ConfigMap's keep), the entry made by hand (0700, a sticky folder inside) is gone, the exit code is 0 and the
    output names each removal."""
    ctx = {**pod_spec().get("securityContext", {}), **container()["securityContext"]}
    out, inbound = _run_the_cronjob(tmp_path, ctx["capabilities"]["add"])
    keep = int(named("ConfigMap", "techday-exchange-budget")["data"]["TECHDAY_EXCHANGE_KEEP"])
    left = sorted(os.listdir(inbound))
    assert out.returncode == 0, out.stderr
    assert left == [f"{TRAINEE}+lab+2026-12-07 10:0{m}:00.000000 UTC+r{m}" for m in range(5)][-keep:], left
    assert out.stdout.count("techday hub sweep: removed ") == 5 - keep + 1, out.stdout
    assert "removed by-hand (uid 20077" in out.stdout


@pytest.mark.parametrize("missing, instead", [("DAC_OVERRIDE", None), ("FOWNER", None),
                                               ("DAC_OVERRIDE", "DAC_READ_SEARCH")])
def test_each_listed_capability_is_needed_and_a_pass_without_it_fails_the_job(tmp_path, missing, instead):
    """Caught, two ways: a capability list longer than the sweep needs (each one listed is shown needed here: without
    it the pass removes nothing; DAC_READ_SEARCH, narrower than DAC_OVERRIDE, lists and weighs but cannot empty a
    trainee's folder), and a pass that could not remove what it should yet exited 0, so its Job showed Complete and
    nobody looked (before: "could not remove (Operation not permitted)" in the log, exit 0). Now a pass that fails to
    remove anything it should exits 1: the Job shows Failed in `kubectl get jobs`."""
    ctx = {**pod_spec().get("securityContext", {}), **container()["securityContext"]}
    caps = [c for c in ctx["capabilities"]["add"] if c != missing] + ([instead] if instead else [])
    out, inbound = _run_the_cronjob(tmp_path, caps)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert len(os.listdir(inbound)) == 6, "nothing was removed without it"


def test_a_pass_that_cannot_remove_what_it_should_exits_1(tmp_path, monkeypatch, capsys):
    """Caught: ``techday hub sweep`` (one pass) returned 0 when a removal failed (a read-only claim, root squashed to
    nobody by an NFS export, a capability missing): the CronJob's Job said Complete each minute while the trainee
    kept everything. The pass still tries every entry, says which it could not remove, ends with a line of counts,
    and exits 1. A pass that removes all it should exits 0 and says so in that line."""
    if os.geteuid() != 0:
        pytest.skip("the sweep leaves the inbound owner's entries alone: giving the entries another uid needs root")
    from techday.cli.main import main
    from techday.hub import exchangequota as q

    inbound = _exchange(tmp_path, "c")
    _users(tmp_path / "users")
    for k, v in {"TECHDAY_EXCHANGE": str(inbound.parent.parent), "TECHDAY_COURSE_ID": "c", "TECHDAY_LANG": "en",
                 "TECHDAY_USERS_FILE": str(tmp_path / "users" / "users.csv"), "TECHDAY_EXCHANGE_KEEP": "3"}.items():
        monkeypatch.setenv(k, v)

    def refused(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(q, "remove_entry", refused)
    assert main(["hub", "sweep"]) == 1
    out = capsys.readouterr().out
    assert out.count("could not remove (Permission denied)") == 3, out
    assert "3 could not be removed" in out.splitlines()[-1], out
    monkeypatch.undo()
    for k, v in {"TECHDAY_EXCHANGE": str(inbound.parent.parent), "TECHDAY_COURSE_ID": "c", "TECHDAY_LANG": "en",
                 "TECHDAY_USERS_FILE": str(tmp_path / "users" / "users.csv"), "TECHDAY_EXCHANGE_KEEP": "3"}.items():
        monkeypatch.setenv(k, v)
    assert main(["hub", "sweep", "--dry-run"]) == 0, "a dry run removes nothing by design: not a failure"
    assert main(["hub", "sweep"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "3 removed" in last and "0 could not be removed" in last, last


def _c(docs):
    (job,) = [d for d in docs if d["kind"] == "CronJob"]
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _env(docs, name):
    return next(e for e in _c(docs)["containers"][0]["env"] if e["name"] == name)


MISTAKES = {
    "another-claim": (lambda d, v: _c(d)["volumes"][0]["persistentVolumeClaim"].update(claimName="techday-course"),
                      test_the_sweep_mounts_the_claim_the_trainees_submit_into_at_TECHDAY_EXCHANGE),
    "another-path": (lambda d, v: _env(d, "TECHDAY_EXCHANGE").update(value="/srv/exchange"),
                     test_the_sweep_mounts_the_claim_the_trainees_submit_into_at_TECHDAY_EXCHANGE),
    "another-course": (lambda d, v: _env(d, "TECHDAY_COURSE_ID").update(value="c101"),
                       test_the_sweep_mounts_the_claim_the_trainees_submit_into_at_TECHDAY_EXCHANGE),
    "another-secret": (lambda d, v: _c(d)["volumes"][1]["secret"].update(secretName="techday-course-service"),
                       test_the_sweep_reads_the_hubs_accounts_file),
    "dry-run": (lambda d, v: _c(d)["containers"][0]["command"].append("--dry-run"),
                test_the_sweeps_command_is_one_real_pass_of_techday_hub_sweep),
    "every-60": (lambda d, v: _c(d)["containers"][0]["command"].extend(["--every", "60"]),
                 test_the_sweeps_command_is_one_real_pass_of_techday_hub_sweep),
    "no-tini": (lambda d, v: _c(d)["containers"][0].update(command=["techday", "hub", "sweep"]),
                test_the_sweeps_command_is_one_real_pass_of_techday_hub_sweep),
    "quota-written-twice": (lambda d, v: _env(d, "TECHDAY_EXCHANGE_QUOTA").update(value="100M") or
                            _env(d, "TECHDAY_EXCHANGE_QUOTA").pop("valueFrom"),
                            test_the_sweep_holds_the_trainees_to_their_own_budget),
    "trainees-miss-files": (lambda d, v: v["singleuser"]["extraEnv"].pop("TECHDAY_EXCHANGE_FILES"),
                            test_the_sweep_holds_the_trainees_to_their_own_budget),
    "budget-refused": (lambda d, v: next(x for x in d if x["kind"] == "ConfigMap")["data"].update(
                           TECHDAY_EXCHANGE_FILES="-1"), test_the_sweep_holds_the_trainees_to_their_own_budget),
    "another-key": (lambda d, v: _env(d, "TECHDAY_EXCHANGE_KEEP")["valueFrom"]["configMapKeyRef"].update(
                        key="TECHDAY_EXCHANGE_FILES"), test_the_sweep_holds_the_trainees_to_their_own_budget),
    "more-caps": (lambda d, v: _c(d)["containers"][0]["securityContext"]["capabilities"]["add"].append("SYS_ADMIN"),
                  test_the_sweep_runs_as_root_with_only_what_removing_other_uids_files_takes),
    "not-root": (lambda d, v: _c(d)["containers"][0]["securityContext"].update(runAsUser=1500),
                 test_the_sweep_runs_as_root_with_only_what_removing_other_uids_files_takes),
    "writable-root": (lambda d, v: _c(d)["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
                      test_the_sweep_runs_as_root_with_only_what_removing_other_uids_files_takes),
    "token": (lambda d, v: _c(d).update(automountServiceAccountToken=True),
              test_the_sweep_runs_as_root_with_only_what_removing_other_uids_files_takes),
    "allow": (lambda d, v: next(x for x in d if x["kind"] == "CronJob")["spec"].update(concurrencyPolicy="Allow"),
              test_one_pass_at_a_time_each_bounded_each_failure_kept),
    "no-deadline": (lambda d, v: next(x for x in d if x["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"].pop(
                        "activeDeadlineSeconds"), test_one_pass_at_a_time_each_bounded_each_failure_kept),
    "retries": (lambda d, v: next(x for x in d if x["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"].update(
                    backoffLimit=6), test_one_pass_at_a_time_each_bounded_each_failure_kept),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_check_catches_its_mistake(monkeypatch, mistake):
    """The checks above have teeth: each mistake their docstrings name, made in a copy of the manifests (or the
    values), fails the check that names it."""
    import tests.unit.test_k8s_sweep as me

    docs, vals = manifests(), values()
    change, check = MISTAKES[mistake]
    change(docs, vals)
    monkeypatch.setattr(me, "manifests", lambda: docs)
    monkeypatch.setattr(me, "values", lambda: vals)
    with pytest.raises((AssertionError, ValueError)):   # ValueError: a budget the product refuses
        check()
