"""docker/locks/: the lab image's locked install sets, one per CUDA major (techday/hub/locks.py).

Offline: the sets swap the right CUDA packages, the committed locks pin every requirement, and the
rule (a conflict, a missing or stale pin, markers for the target) on metadata made up here. Online
(marked slow; skipped with the reason printed only when the package registry cannot be reached):
`techday locks check` on the committed locks, and on a lock broken on purpose."""

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from techday.hub import locks
from techday.hub.locks import Meta, Pin
from tests.conftest import ROOT

LOCKS = ROOT / "docker" / "locks"


def _names(reqs):
    return {canonicalize_name(r.name): r for r in reqs}


def _techday(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "techday", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


# ---------------------------------------------------------------------------------------------
# offline


def test_each_set_swaps_in_its_own_cuda_packages():
    """Catches a set that keeps a CUDA 12 package in the CUDA 13 set (ResolutionImpossible: torch
    needs cuda-bindings 13, numba-cuda[cu12] needs < 13), or a CUDA 12 set whose torch is CUDA 13."""
    cu13 = _names(locks.requirements(ROOT, locks.SETS["cuda13"]))
    assert cu13["numba-cuda"].extras == {"cu13"}
    assert cu13["cupy-cuda13x"].extras == {"ctk"}
    assert "cupy-cuda12x" not in cu13
    assert not any("cu12" in r.extras for r in locks.requirements(ROOT, locks.SETS["cuda13"]))
    torch13 = [r for r in locks.requirements(ROOT, locks.SETS["cuda13"]) if r.name == "torch"]
    assert any(str(r.specifier) == "==2.13.0" for r in torch13)

    cu12 = locks.requirements(ROOT, locks.SETS["cuda12"])
    assert _names(cu12)["cupy-cuda12x"].extras == {"ctk"}
    assert all(r.extras == {"cu12"} for r in cu12 if r.name == "numba-cuda")
    torch12 = [r for r in cu12 if r.name == "torch"]
    assert all(r.specifier.contains("2.10.0") for r in torch12)
    assert not all(r.specifier.contains("2.11.0") for r in torch12), "2.11 and later are CUDA 13 builds"
    assert locks.DEFAULT_SET == "cuda13"


def test_the_cuda13_set_takes_the_pytorch_that_ci_tests():
    """Catches a torch bump in .ci/run (or in the set) that leaves the image on another release."""
    ci = re.search(r"pip install --quiet torch==([\w.+]+)", (ROOT / ".ci" / "run").read_text()).group(1)
    pin = locks.parse_lock(LOCKS / "cuda13.txt").pins["torch"].version
    assert pin == ci, f"the image's torch {pin} is not the {ci} that CI installs"


@pytest.mark.parametrize("name", sorted(locks.SETS))
def test_no_set_takes_numpy_2_5(name):
    """numba-cuda 0.30.4 compiles no kernel with NumPy 2.5 (np.row_stack is gone; seen on an H200), and
    NumPy 2.5 installs only on Python 3.12, the image's, never on CI's 3.11: catches a set that would
    let `compile --upgrade` take it, and a lock that pins it."""
    numpy = [r for r in locks.requirements(ROOT, locks.SETS[name]) if r.name == "numpy"]
    assert not all(r.specifier.contains("2.5.0") for r in numpy)
    assert locks.parse_lock(LOCKS / f"{name}.txt").pins["numpy"].version.startswith("2.4.")


@pytest.mark.parametrize("name", sorted(locks.SETS))
def test_committed_lock_pins_every_requirement(name):
    """Offline half of the rule: every requirement of the set is pinned at an accepted version, with
    hashes. Catches a pyproject.toml bump (here numpy>=99) that was not re-locked."""
    lock = locks.parse_lock(LOCKS / f"{name}.txt")
    reqs = locks.requirements(ROOT, locks.SETS[name])
    assert locks.top_level_problems(reqs, lock.pins) == []
    assert all(pin.hashes for pin in lock.pins.values())
    wheels, mb = locks.header_totals(lock)
    assert wheels == len(lock.pins) and mb > 100
    assert any(f"CPython {locks.PYTHON}" in line for line in lock.header)

    bumped = reqs + [Requirement("numpy>=99")]
    problems = locks.top_level_problems(bumped, lock.pins)
    assert len(problems) == 1 and "numpy>=99" in problems[0] and "numpy==" in problems[0]


def test_parse_lock_names_the_bad_line(tmp_path):
    """Catches an unpinned line, a pin without a hash, a package pinned twice."""
    h = "--hash=sha256:" + "0" * 64
    cases = {
        "numpy>=2 \\\n    " + h + "\n": "is not a pin",
        "numpy==2.4.6\n": "has no --hash",
        f"numpy==2.4.6 \\\n    {h}\nnumpy==2.4.7 \\\n    {h}\n": "pinned twice",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.txt"
        path.write_text("# header\n" + text)
        with pytest.raises(locks.LockError, match=message) as info:
            locks.parse_lock(path)
        assert "bad.txt:2" in str(info.value) or "bad.txt:4" in str(info.value)
    path.write_text(f"# a header\nsix==1.17.0 \\\n    {h}\n    # 0.0 MB, via x\n")
    lock = locks.parse_lock(path)
    assert lock.pins["six"].version == "1.17.0" and lock.header == ["a header"]
    # A lock saved in another encoding (or a binary file given as --lock): was a UnicodeDecodeError
    # traceback out of `techday locks check`, now the command's one line naming the file.
    path.write_bytes(b"# header\nnumpy==2.4.6 \xff\n")
    with pytest.raises(locks.LockError, match="bad.txt: not UTF-8 text"):
        locks.parse_lock(path)


def _pins(**versions):
    return {canonicalize_name(n): Pin(canonicalize_name(n), v, {"x"}) for n, v in versions.items()}


def _meta(name, version, *requires, python=None):
    return Meta(canonicalize_name(name), version, list(requires), python)


# The case of the delivery issue, with the real requirement strings of these wheels.
TORCH = _meta("torch", "2.13.0", 'cuda-bindings<14,>=13.0.3; platform_system == "Linux" and python_version < "3.15"')
NUMBA_CUDA = _meta("numba-cuda", "0.30.4", "cuda-bindings<14.0.0,>=12.9.1",
                   'cuda-bindings<13.0.0,>=12.9.1; extra == "cu12"', 'cuda-bindings==13.*; extra == "cu13"')


def test_a_conflict_names_the_package_both_requirements_and_the_pin():
    """Catches the ResolutionImpossible of the delivery issue: torch 2.13 and numba-cuda[cu12]."""
    reqs = [Requirement("torch==2.13.0"), Requirement("numba-cuda[cu12]>=0.20")]
    pins = _pins(torch="2.13.0", **{"numba-cuda": "0.30.4", "cuda-bindings": "12.9.4"})
    metas = {"torch": TORCH, "numba-cuda": NUMBA_CUDA, "cuda-bindings": _meta("cuda-bindings", "12.9.4")}
    problems = locks.consistency_problems(reqs, pins, metas)
    assert len(problems) == 1, problems
    assert problems[0].startswith("conflict: torch==2.13.0 requires cuda-bindings<14,>=13.0.3, but the lock pins "
                                  "cuda-bindings==12.9.4")
    assert "numba-cuda[cu12]==0.30.4 (cuda-bindings<13.0.0,>=12.9.1)" in problems[0]

    pins["cuda-bindings"] = Pin("cuda-bindings", "13.5.0", {"x"})
    problems = locks.consistency_problems(reqs, pins, {**metas, "cuda-bindings": _meta("cuda-bindings", "13.5.0")})
    assert problems == ["conflict: numba-cuda[cu12]==0.30.4 requires cuda-bindings<13.0.0,>=12.9.1, but the lock "
                        "pins cuda-bindings==13.5.0; cuda-bindings is also required by numba-cuda==0.30.4 "
                        "(cuda-bindings<14.0.0,>=12.9.1), torch==2.13.0 (cuda-bindings<14,>=13.0.3)"]

    ok = [Requirement("torch==2.13.0"), Requirement("numba-cuda[cu13]>=0.20")]
    assert locks.consistency_problems(ok, pins, {**metas, "cuda-bindings": _meta("cuda-bindings", "13.5.0")}) == []


def test_markers_are_evaluated_for_the_target_python_not_this_one():
    """Catches pip's pitfall: `--python-version 3.12` still evaluates markers for the running Python,
    so on 3.11 jupyter-server's `overrides; python_version < '3.12'` would look required."""
    reqs = [Requirement("jupyter-server")]
    pins = _pins(**{"jupyter-server": "2.21.1", "anyio": "4.16.0"})
    metas = {"jupyter-server": _meta("jupyter-server", "2.21.1", "anyio>=3.1.0", "overrides>=5.0; python_version < '3.12'",
                                     "pywin32>=300; sys_platform == 'win32'"),
             "anyio": _meta("anyio", "4.16.0")}
    assert locks.consistency_problems(reqs, pins, metas) == []
    metas["anyio"] = _meta("anyio", "4.16.0", "idna>=2.8; platform_system == 'Linux'")
    assert locks.consistency_problems(reqs, pins, metas) == [
        "anyio==4.16.0 requires idna>=2.8, which the lock does not pin"]


def test_extras_are_followed_and_stale_pins_reported():
    """Catches a dependency reached only through an extra (cuda-toolkit[nvcc] -> nvidia-cuda-nvcc)
    missing from the lock, and a pin that nothing requires."""
    reqs = [Requirement("numba-cuda[cu13]")]
    nc = _meta("numba-cuda", "0.30.4", 'cuda-toolkit[nvrtc]==13.*; extra == "cu13"')
    tk = _meta("cuda-toolkit", "13.0.3.0", "nvidia-cuda-nvrtc==13.0.88.*; extra == 'nvrtc'",
               "nvidia-cuda-nvcc==13.0.88.*; extra == 'nvcc'")
    pins = _pins(**{"numba-cuda": "0.30.4", "cuda-toolkit": "13.0.3.0", "nvidia-cuda-nvrtc": "13.0.88",
                    "nvidia-cuda-nvcc": "13.0.88"})
    metas = {"numba-cuda": nc, "cuda-toolkit": tk, "nvidia-cuda-nvrtc": _meta("nvidia-cuda-nvrtc", "13.0.88"),
             "nvidia-cuda-nvcc": _meta("nvidia-cuda-nvcc", "13.0.88")}
    assert locks.consistency_problems(reqs, pins, metas) == [
        "nvidia-cuda-nvcc==13.0.88 is pinned but nothing in the set requires it (a stale pin)"]
    reqs.append(Requirement("cuda-toolkit[nvcc]==13.*"))
    assert locks.consistency_problems(reqs, pins, metas) == []
    del pins["nvidia-cuda-nvrtc"], metas["nvidia-cuda-nvrtc"]
    assert locks.consistency_problems(reqs, pins, metas) == [
        "cuda-toolkit[nvrtc]==13.0.3.0 requires nvidia-cuda-nvrtc==13.0.88.*, which the lock does not pin"]


def test_requires_python_is_checked_for_the_target():
    """Catches a pin whose release needs a newer Python than the image's."""
    metas = {"a": _meta("a", "1.0", python=">=3.13")}
    problems = locks.consistency_problems([Requirement("a")], _pins(a="1.0"), metas)
    assert problems == [f"a==1.0 requires Python >=3.13, not {locks.PYTHON_FULL}"]


def test_the_wheel_counted_is_the_one_pip_takes():
    """Catches sizes summed over the pure-Python fallback instead of the platform wheel."""
    wheels = [{"url": "https://x/yarl-1.25.1-py3-none-any.whl", "size": 1},
              {"url": "https://x/yarl-1.25.1-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", "size": 2},
              {"url": "https://x/yarl-1.25.1-cp312-cp312-musllinux_1_2_x86_64.whl", "size": 3}]
    assert locks._pick_wheel(wheels)["size"] == 2


def test_readme_states_each_locks_size():
    """Catches a re-locked set whose size or wheel count the README still gives from before."""
    text = (ROOT / "docker" / "README.md").read_text()
    for name in locks.SETS:
        wheels, mb = locks.header_totals(locks.parse_lock(LOCKS / f"{name}.txt"))
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row, f"docker/README.md has no row for the {name} set"
        assert f"{wheels} wheels" in row and f"{mb:,.0f} MB" in row, (row, wheels, mb)


def test_the_locks_commands_end_with_the_same_codes(tmp_path, capsys):
    """Catches the two locks commands disagreeing on what an exit code means (compile used to give 1
    for an unknown set, check 2): an unknown set or ``--lock`` with two sets is bad usage (2) in both;
    a lock that cannot be read is a failed check (1). Nothing here reaches the registry."""
    from techday.cli.main import main

    assert main(["locks", "check", "cuda99"]) == 2
    assert main(["locks", "compile", "cuda99"]) == 2
    assert "unknown set(s) cuda99" in capsys.readouterr().err
    assert main(["locks", "check", "cuda12", "cuda13", "--lock", str(tmp_path / "x.txt")]) == 2
    assert "--lock needs exactly one SET" in capsys.readouterr().err
    bad = tmp_path / "cuda13.txt"
    bad.write_text("torch>=2\n")
    assert main(["locks", "check", "cuda13", "--lock", str(bad), "--no-uv"]) == 1
    assert "is not a pin" in capsys.readouterr().err


def test_an_unreachable_registry_is_reported_as_such(tmp_path):
    """Catches a check that passes (or blames the lock) when nothing could be fetched: an index on a
    closed port of this machine gives exit 3 and says the registry is unreachable."""
    lock = tmp_path / "cuda13.txt"
    shutil.copyfile(LOCKS / "cuda13.txt", lock)
    index = "http://127.0.0.1:9/simple"
    out = _techday("locks", "check", "cuda13", "--lock", str(lock), "--no-cache", "--no-uv",
                   env={"PIP_INDEX_URL": index, "PIP_EXTRA_INDEX_URL": index, "PIP_FIND_LINKS": str(tmp_path),
                        "TECHDAY_LOCKS_TIMEOUT": "5"}, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "registry is unreachable" in out.stderr


# ---------------------------------------------------------------------------------------------
# online: the registry


def _skip_if_unreachable(out):
    if out.returncode == 3:
        pytest.skip("the package registry is unreachable, so the locks could not be checked: "
                    + out.stderr.strip().splitlines()[-1][:300])


@pytest.mark.slow
def test_committed_locks_pass_the_check():
    """The whole rule on both committed locks, against the registry's wheel metadata (and uv)."""
    out = _techday("locks", "check")
    print(out.stdout + out.stderr)
    _skip_if_unreachable(out)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in locks.SETS:
        assert f"docker/locks/{name}.txt: ok:" in out.stdout


@pytest.mark.slow
def test_a_lock_that_no_longer_resolves_is_rejected_and_nothing_is_touched(tmp_path):
    """Catches the delivery issue's conflict in a lock: cuda-bindings moved back to the CUDA 12
    release. The check exits 1, names torch, numba-cuda[cu13] and cuda-bindings with both
    requirements, and changes no file: neither the lock it read nor the committed ones."""
    cu12 = locks.parse_lock(LOCKS / "cuda12.txt").pins["cuda-bindings"]
    text = (LOCKS / "cuda13.txt").read_text()
    entry = re.search(r"^cuda-bindings==\S+ \\\n(?:    --hash=\S+ \\\n)*    --hash=\S+\n", text, re.M).group(0)
    broken = text.replace(entry, f"cuda-bindings=={cu12.version} \\\n"
                          + " \\\n".join(f"    --hash=sha256:{h}" for h in sorted(cu12.hashes)) + "\n")
    lock = tmp_path / "cuda13.txt"
    lock.write_text(broken)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in [*LOCKS.iterdir(), lock]}

    out = _techday("locks", "check", "cuda13", "--lock", str(lock))
    print(out.stdout + out.stderr)
    _skip_if_unreachable(out)
    assert out.returncode == 1, out.stdout + out.stderr
    assert (f"conflict: torch==2.13.0 requires cuda-bindings<14,>=13.0.3, but the lock pins "
            f"cuda-bindings=={cu12.version}") in out.stderr
    assert f"numba-cuda[cu13]==0.30.4 requires cuda-bindings==13.*, but the lock pins cuda-bindings=={cu12.version}" \
        in out.stderr
    assert "FAILED" in out.stdout
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in [*LOCKS.iterdir(), lock]}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["cuda13.txt"]
