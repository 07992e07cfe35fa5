"""course/RUNBOOK.md's commands are executable documentation: every fenced ``bash`` block is read,
each command classified, and every block that needs no Docker, Kubernetes or GPU driver runs here, in
the runbook's order, on the CPU tier, in a temporary folder that plays the hub container's
/srv/nbgrader (TECHDAY_BUILD, TECHDAY_COURSE_ROOT, TECHDAY_EXCHANGE as the grader image sets them).

What the runbook cannot do itself is done in between, and said so: the grader image's build step
(``techday build`` of the labs the runbook names), one trainee fetching and submitting the released lab
(nbgrader, as the trainee's server does), and the results file that lab 08 hands in."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, techday

RUNBOOK = ROOT / "course" / "RUNBOOK.md"
SKIP = {
    "docker": "needs Docker (the images, compose, a container)",
    "kubectl": "needs a Kubernetes cluster",
    "helm": "needs a Kubernetes cluster and the chart",
    "nvidia-smi": "needs the NVIDIA driver and a GPU",
}
RUN = {"techday", "nbgrader", "python", "cd"}
COMMAND_TIMEOUT_S = 600
# Runbook commands that fail today for a reason outside the runbook: (what the failure prints, why). The
# test runs them and wants that failure; once it is gone, the test fails until the entry is removed.
KNOWN_BROKEN: dict[str, tuple[str, str]] = {}


def blocks(text: str) -> list[tuple[int, str]]:
    """(line, code) of every fenced bash block, list indentation removed."""
    out = []
    for m in re.finditer(r"^( *)```bash\n(.*?)^\1```", text, re.M | re.S):
        indent = len(m.group(1))
        code = "\n".join(line[indent:] for line in m.group(2).splitlines())
        out.append((text.count("\n", 0, m.start()) + 1, code))
    return out


def strip_comment(line: str) -> str:
    """The line without its trailing ``# comment`` (a ``#`` inside quotes or a word stays)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def commands(code: str) -> list[str]:
    out, buf = [], ""
    for line in code.splitlines():
        line = strip_comment(line)
        line = line.lstrip() if buf else line
        if line.endswith("\\"):
            buf += line[:-1].rstrip() + " "
            continue
        buf += line
        if buf.strip():
            out.append(buf.strip())
        buf = ""
    return out


def head(command: str) -> str:
    """The program a command line starts, past ``VAR=value`` prefixes; "" for a plain assignment."""
    for word in shlex.split(re.sub(r"\$\([^)]*\)", "SUBST", command)):  # TOKEN=$(openssl ...) is an assignment
        if not re.match(r"^[A-Za-z_]\w*=", word):
            return word
    return ""


def classify(code: str) -> tuple[str, list[tuple[str, str]]]:
    """("run" | "skip" | "mixed" | "unknown", [(command, reason)]) for one block."""
    kinds, notes = set(), []
    for cmd in commands(code):
        word = head(cmd)
        if word in SKIP:
            kinds.add("skip")
            notes.append((cmd, SKIP[word]))
        elif word in RUN or word == "":
            kinds.add("run")
            notes.append((cmd, "runs here" if word else "an assignment, for the commands after it"))
        else:
            kinds.add("unknown")
            notes.append((cmd, f"{word!r}: neither known to need Docker/Kubernetes/a GPU nor known to run here"))
    if "unknown" in kinds:
        return "unknown", notes
    if kinds == {"skip", "run"}:
        # Assignments alone do not make a block runnable: TOKEN=$(...) belongs to the kubectl lines after it.
        if not any(r == "runs here" for _, r in notes):
            return "skip", notes
        return "mixed", notes
    return (kinds.pop() if kinds else "run"), notes


RUNBOOK_BLOCKS = blocks(RUNBOOK.read_text(encoding="utf-8"))


def test_classification_follows_the_command_not_the_block():
    assert classify("techday hub users --out x\nLAB=01\n")[0] == "run"
    assert classify("TOKEN=$(openssl rand -hex 32)\nkubectl create ns x\n")[0] == "skip"
    assert classify("TECHDAY_GPUS=0,1 docker compose up -d  # one server\n")[0] == "skip"
    assert classify("techday list\ndocker ps\n")[0] == "mixed"
    assert classify("curl -O https://x\n")[0] == "unknown"
    assert commands("a \\\n  b  # note\n\n# only a comment\nc '#not a comment'\n") == ["a b", "c '#not a comment'"]


def test_every_runbook_block_is_runnable_or_needs_docker_throughout():
    assert len(RUNBOOK_BLOCKS) >= 8, "the runbook's day-of commands are in fenced bash blocks"
    runnable = 0
    for line, code in RUNBOOK_BLOCKS:
        kind, notes = classify(code)
        for cmd, reason in notes:
            print(f"RUNBOOK.md:{line}: {kind:<5} {cmd[:90]}  ({reason})")
        assert kind in ("run", "skip"), (f"RUNBOOK.md:{line}: block is {kind}: put the commands that need Docker "
                                         f"and the ones that run anywhere in separate blocks\n{notes}")
        if kind == "run":
            runnable += sum(1 for c, _ in notes if head(c))
            for cmd, _ in notes:
                assert "/srv/" not in cmd, (f"RUNBOOK.md:{line}: {cmd}: name the hub container's paths with the "
                                            "variables its image sets ($TECHDAY_COURSE_ROOT, ...)")
    assert runnable >= 8, f"only {runnable} runnable command(s) found"


def test_inline_techday_commands_exist():
    """A `techday ...` named in the text (not in a block) is a real command: its --help works."""
    text = re.sub(r"```.*?```", "", RUNBOOK.read_text(encoding="utf-8"), flags=re.S)
    named = {" ".join(w for w in m.split()[1:] if re.fullmatch(r"[a-z]+", w))
             for m in re.findall(r"`(techday [^`]*)`", text)}
    assert {"hub check", "grade check", "grade autograde", "grade results"} <= named, named
    for sub in sorted(named):
        out = techday(*sub.split()[:2], "--help", timeout=120)
        assert out.returncode == 0, f"`techday {sub}` is named in the runbook but is no command: {out.stderr}"


# ------------------------------------------------------------------------------------------ running


def _labs_named(runnable_blocks) -> list[str]:
    return sorted({m for _, code in runnable_blocks for m in re.findall(r"^LAB=(\S+)", code, re.M)})


def _env(tmp_path) -> dict:
    srv = tmp_path / "srv-nbgrader"  # plays /srv/nbgrader in the hub container
    (srv / "exchange").mkdir(parents=True)
    (srv / "exchange").chmod(0o777)
    home = tmp_path / "home"
    home.mkdir()
    from techday.course.syllabus import load_course

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TECHDAY_", "JUPYTER"))}
    env.update(
        HOME=str(home), TECHDAY_ROOT=str(ROOT), TECHDAY_BUILD=str(srv), TECHDAY_COURSE_ROOT=str(srv / "course"),
        TECHDAY_EXCHANGE=str(srv / "exchange"), TECHDAY_COURSE_ID=load_course(ROOT).id, TECHDAY_TIER="cpu",
        CUDA_VISIBLE_DEVICES="", JUPYTER_CONFIG_PATH=str(ROOT / "docker" / "etc-jupyter"),  # the image's /etc/jupyter
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


PREAMBLE = f"""set -euo pipefail
techday() {{ {shlex.quote(sys.executable)} -m techday "$@"; }}
nbgrader() {{ {shlex.quote(sys.executable)} -m nbgrader "$@"; }}
python() {{ {shlex.quote(sys.executable)} "$@"; }}
"""


def _run_block(code: str, env: dict, cwd) -> list[tuple[str, float, int]]:
    """Run one block in bash, each command timed: [(command, seconds, exit code)], stopping at a failure."""
    cmds = commands(code)
    script = PREAMBLE
    for i, cmd in enumerate(cmds):
        script += f'echo "::mark {i} $(date +%s.%N)"\n'
        if cmd in KNOWN_BROKEN:
            sign = shlex.quote(KNOWN_BROKEN[cmd][0])
            script += (f'if {cmd} >known.log 2>&1; then echo "::fixed {i}"; else cat known.log; '
                       f'grep -q {sign} known.log || exit 1; echo "::known {i}"; fi; rm -f known.log\n')
        else:
            script += f"{cmd}\n"
    script += 'echo "::mark end $(date +%s.%N)"\n'
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S * max(1, len(cmds)))
    marks = [(m.group(1), float(m.group(2))) for m in re.finditer(r"^::mark (\S+) ([\d.]+)$", proc.stdout, re.M)]
    timed = [(cmds[int(idx)], t1 - t0, 0) for (idx, t0), (_, t1) in zip(marks, marks[1:])]
    for state, idx in re.findall(r"^::(fixed|known) (\d+)$", proc.stdout, re.M):
        cmd = cmds[int(idx)]
        assert state == "known", f"`{cmd}` works now: take it off KNOWN_BROKEN"
        print(f"KNOWN BROKEN, failed as expected: {cmd}: {KNOWN_BROKEN[cmd][1]}")
    if proc.returncode != 0:
        failed = cmds[int(marks[-1][0])] if marks and marks[-1][0] != "end" else "?"
        raise AssertionError(f"RUNBOOK command failed (exit {proc.returncode}): {failed}\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return timed


def _trainee_submits(lab: str, env: dict, tmp_path, user: str = "trainee-001") -> None:
    """What a trainee's server does with the exchange: Fetch, then Submit (the hub user is the student id)."""
    work = tmp_path / user
    work.mkdir()
    trainee_env = {**env, "JUPYTERHUB_USER": user}
    for step in ("fetch_assignment", "submit"):
        out = subprocess.run([sys.executable, "-m", "nbgrader", step, lab], cwd=work, env=trainee_env,
                             capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        assert out.returncode == 0, f"trainee {step} {lab}: {out.stdout[-1500:]}{out.stderr[-1500:]}"


def _as_the_hub_runs_servers(env: dict, tmp_path, operator) -> str:
    """The course service's collect takes an entry only from the uid the accounts file gives its student
    (techday.hub.exchange). On the day the trainee's server runs as that uid; here the trainee's steps ran
    as this test's user, so the entries are handed to that uid (root only), and the course service is
    given the accounts file the runbook made, as compose mounts it. Without root: nbgrader's own collect
    by name, said in the report."""
    from techday.hub.config import read_accounts
    from tests.uids import chown_tree, collect_by_name_config

    users = operator / "docker" / "hub-users" / "users.csv"
    inbound = tmp_path / "srv-nbgrader" / "exchange" / env["TECHDAY_COURSE_ID"] / "inbound"
    if os.geteuid() == 0 and users.is_file():
        uid = read_accounts(users)["trainee-001"].uid
        for entry in inbound.iterdir():
            if entry.name.startswith("trainee-001+"):
                chown_tree(entry, uid, -1)
        env["TECHDAY_USERS_FILE"] = str(users)
        return f"[setup]  trainee-001's submissions given to uid {uid} (users.csv), as their server would make them"
    env["JUPYTER_CONFIG_PATH"] = str(collect_by_name_config(tmp_path / "collect-by-name"))
    return "[setup]  not root: collect by name (nbgrader's own); the uid check is tests/hub's"


@pytest.mark.grading
@pytest.mark.slow
def test_runbook_commands_run_in_order(tmp_path):
    runnable = [(line, code) for line, code in RUNBOOK_BLOCKS if classify(code)[0] == "run"]
    skipped = [(line, code) for line, code in RUNBOOK_BLOCKS if classify(code)[0] == "skip"]
    env = _env(tmp_path)
    operator = tmp_path / "operator"  # where the person types (the repository root on the day)
    operator.mkdir()
    labs = _labs_named(runnable)
    assert labs, "the runbook names the lab it releases and grades (LAB=...)"

    # The grader image's build step, for the labs the runbook names.
    t0 = time.monotonic()
    out = techday("build", *labs, env={k: env[k] for k in env if k.startswith("TECHDAY_")})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    print(f"\n[setup] techday build {' '.join(labs)} (the grader image's build step): {time.monotonic() - t0:.1f} s")

    course = tmp_path / "srv-nbgrader" / "course"
    report, submitted = [], False
    for line, code in RUNBOOK_BLOCKS:
        if (line, code) not in runnable:
            assert (line, code) in skipped, f"RUNBOOK.md:{line}: neither runnable nor known to need Docker"
            for cmd, reason in classify(code)[1]:
                report.append(f"skipped  RUNBOOK.md:{line}: {cmd[:80]} ({reason})")
            continue
        if "nbgrader collect" in code and submitted:
            # Lab 08's hand-in, as `nbgrader collect` leaves it: a results file the trainee measured (one
            # family, about 6 s; the kit's own committed run is refused by the leaderboard as a copy).
            lab08 = course / "submitted" / "trainee-001" / "08-measure-your-gpu"
            lab08.mkdir(parents=True)
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "techday", "bench", "--quick", "--tier", "cpu", "--family", "stream",
                            "--no-sim-check", "--no-progress", "--out", str(lab08)], check=True, timeout=300,
                           capture_output=True, cwd=ROOT)
            report.append(f"[setup]  lab 08's results file measured into submitted/trainee-001 (what collect leaves,"
                          f" {time.monotonic() - t0:.1f} s)")
        for cmd, seconds, _ in _run_block(code, env, operator):
            report.append(f"ran      RUNBOOK.md:{line}: {cmd[:80]} ({seconds:.1f} s)")
        if "nbgrader release_assignment" in code:
            for lab in labs:
                t0 = time.monotonic()
                _trainee_submits(lab, env, tmp_path)
                report.append(f"[setup]  trainee-001 fetches and submits {lab} ({time.monotonic() - t0:.1f} s)")
            report.append(_as_the_hub_runs_servers(env, tmp_path, operator))
            submitted = True
    print("\n".join(report))

    # What the commands were for, checked where they leave it.
    assert (operator / "docker" / "hub-users" / "users.csv").is_file()
    assert len((operator / "docker" / "hub-users" / "users.csv").read_text().splitlines()) > 300
    exchange = tmp_path / "srv-nbgrader" / "exchange" / env["TECHDAY_COURSE_ID"]
    for lab in labs:
        assert (exchange / "outbound" / lab).is_dir(), "released into the exchange"
        assert (course / "submitted" / "trainee-001" / lab / f"{lab}.ipynb").is_file(), "collected"
        assert (course / "autograded" / "trainee-001" / lab).is_dir(), "autograded"
        assert (course / "feedback" / "trainee-001" / lab / f"{lab}.html").is_file(), "feedback written"
        if 'nbgrader release_feedback "$LAB"' not in KNOWN_BROKEN:
            assert list((exchange / "feedback").iterdir()), "feedback released"
    assert (tmp_path / "srv-nbgrader" / "grading" / "passfail.csv").is_file()
    assert (tmp_path / "srv-nbgrader" / "leaderboard" / "leaderboard.json").is_file()
    ran = sum(1 for r in report if r.startswith("ran"))
    print(f"{ran} command(s) ran, {sum(1 for r in report if r.startswith('skipped'))} skipped")
    assert ran >= 8
