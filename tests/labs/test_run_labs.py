"""Every lab runs headless through `techday run`, and bad labs fail alone with a reason."""

import json
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from techday.course.syllabus import load_course
from tests.conftest import ROOT, techday, validated

pytestmark = [pytest.mark.labs, pytest.mark.slow]


def test_every_lab_runs_on_the_cpu_tier(tmp_path):
    """Every lab of the course; on a tree `techday validate` has just checked (CI), its outputs."""
    done = validated("run")
    if done is None:
        out = techday("run", "--tier", "cpu", "--scale", "ci", "--jobs", "2", env={"TECHDAY_BUILD": str(tmp_path)})
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        done = tmp_path / "run"
    summary = json.loads((done / "summary.json").read_text())
    assert summary["schema"] == "techday.run/1" and summary["ok"] and summary["tier"]["tier"] == "cpu"
    assert sorted(lab["lab"] for lab in summary["labs"]) == sorted(load_course(ROOT).labs)
    for lab in summary["labs"]:
        assert (lab["status"], lab["tier"], lab["scale"]) == ("passed", "cpu", "ci"), lab
        executed = (done / lab["lab"] / f"{lab['lab']}.ipynb").read_text()
        assert "TIER: CPU" in executed, "the tier banner is printed in the first cell"
    junit = ET.parse(done / "junit.xml").getroot()
    assert junit.get("failures") == "0" and junit.get("errors") == "0"


def test_bad_labs_fail_alone_with_reasons(fixture_course):
    out = techday("--root", str(fixture_course), "run", "ok", "raises", "hangs", "dies", "broken", "litters",
                  "holds", "--jobs", "3", "--tier", "cpu")
    assert out.returncode == 1
    summary = json.loads((fixture_course / "build" / "run" / "summary.json").read_text())
    by_lab = {r["lab"]: r for r in summary["labs"]}
    assert by_lab["ok-lab"]["status"] == "passed"
    assert by_lab["raises-lab"]["status"] == "failed"
    assert "ValueError: scenario: this lab raises" in by_lab["raises-lab"]["reason"]
    assert "line 12" in by_lab["raises-lab"]["failing_cell"]
    assert by_lab["hangs-lab"]["status"] == "timeout" and "'forever'" in by_lab["hangs-lab"]["failing_cell"]
    assert by_lab["hangs-lab"]["seconds"] < 60
    assert by_lab["dies-lab"]["status"] == "crashed" and "'die'" in by_lab["dies-lab"]["failing_cell"]
    assert by_lab["broken-lab"]["status"] == "error" and "syntax error" in by_lab["broken-lab"]["reason"]
    # Ran to the end but left a file in its temporary folder (lab.scratch's folder is gone at exit).
    litter = by_lab["litters-lab"]
    assert litter["status"] == "failed" and "left 1 file(s) in its temporary folder" in litter["reason"], litter
    assert "scenario-left-" in litter["reason"] and "techday-scenario-" not in litter["reason"], litter
    # Its temporary folder (on a short path, so that a Unix socket in it fits: the lab binds one) is removed.
    where_it_was = fixture_course / "build" / "run" / "litters-lab" / "tmp"
    assert not where_it_was.exists()
    assert not list(Path(tempfile.gettempdir()).glob("techday-litters-lab-*")), "the lab's temporary folder is removed"
    assert len(f"{where_it_was}/pymp-abcdefgh/listener-xxxxxxxx".encode()) > 107, "the old place fitted the socket"
    # The most memory each lab's processes held together: a kernel's child counts (wrong answer caught: a
    # figure of the worker or the kernel alone, or none), and it is shown in the table.
    assert by_lab["ok-lab"]["memory_mb"] and 20 < by_lab["ok-lab"]["memory_mb"] < 1000, by_lab["ok-lab"]
    assert by_lab["holds-lab"]["status"] == "passed", by_lab["holds-lab"]
    assert by_lab["holds-lab"]["memory_mb"] >= by_lab["ok-lab"]["memory_mb"] + 250, (by_lab["holds-lab"], by_lab["ok-lab"])
    assert "host MB" in out.stdout
    # Nothing already executed is lost: the raising lab keeps the cells that ran before it.
    partial = json.loads((fixture_course / "build" / "run" / "raises-lab" / "raises-lab.ipynb").read_text())
    assert "TIER: CPU" in json.dumps(partial["cells"])
    # One progress line per lab, each naming it.
    for lab in ("ok-lab", "raises-lab", "hangs-lab", "dies-lab", "broken-lab", "litters-lab", "holds-lab"):
        assert any(line.startswith("[") and lab in line for line in out.stdout.splitlines()), lab


def test_gpu_tier_without_gpu_is_a_clear_usage_error(fixture_course):
    from techday.tier import detect

    if detect("auto").tier == "gpu":
        pytest.skip("this machine has a GPU: the no-GPU path cannot be shown here")
    out = techday("--root", str(fixture_course), "run", "ok", "--tier", "gpu")
    assert out.returncode == 2 and "tier 'gpu' was requested but" in out.stderr


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_starts_nothing_new_stops_what_runs_and_keeps_what_finished(fixture_course, tmp_path, sig):
    """Caught: labs queued before Ctrl-C starting after it, a kernel left running, nothing written. With
    SIGTERM (`kill`, `docker stop`, `timeout`): the command died where it stood, exit -15, no summary, and
    the running lab's worker and kernel (in a session of their own) left running."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, ctrl_c_works

    out_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "techday", "--root", str(fixture_course), "run", "ok", "hangs",
                             "dies", "--jobs", "1", "--tier", "cpu", "--timeout", "300", "--out", str(out_dir)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_works)
    try:
        deadline = time.monotonic() + 240
        hanging = out_dir / "hangs-lab" / "hangs-lab.ipynb"   # papermill saves it once cells start
        while not hanging.is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert hanging.is_file(), "the hanging lab never started"
        time.sleep(2)
        proc.send_signal(getattr(signal, sig))
        out, errs = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reaped, pipes closed: nothing left for a later test to trip over
    assert proc.returncode == 130, out[-2000:] + errs[-2000:]
    summary = json.loads((out_dir / "summary.json").read_text())
    by_lab = {r["lab"]: r["status"] for r in summary["labs"]}
    assert summary["interrupted"] and not summary["ok"]
    assert by_lab == {"ok-lab": "passed", "hangs-lab": "interrupted", "dies-lab": "not started"}, by_lab
    reasons = {r["lab"]: r["reason"] for r in summary["labs"]}
    assert reasons["hangs-lab"] == f"stopped by {'Ctrl-C' if sig == 'SIGINT' else sig}", reasons
    assert not (out_dir / "dies-lab" / "worker.log").exists(), "no lab starts after Ctrl-C"
    junit = ET.parse(out_dir / "junit.xml").getroot()
    assert junit.get("skipped") == "1" and junit.get("errors") == "1"
    assert "not started" in out and "interrupted" in out, "the table is printed"
    left = [p for p in os.listdir("/proc") if p.isdigit() and str(out_dir).encode() in _cmdline(p)]
    assert not left, f"processes of the stopped lab still run: {left}"


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""
