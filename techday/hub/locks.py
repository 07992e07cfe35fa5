"""Locked install sets for the lab image: one per CUDA major, in ``docker/locks/<set>.txt``.

    techday locks check [SET ...]     every pin's wheel metadata against the others; exit 1 on a conflict
    techday locks compile [SET ...]   resolve again with uv (nothing installed) and rewrite the lock

A set's *requirements* are pyproject.toml's runtime set plus its ``gpu`` and ``hub`` extras, with the
CUDA-major packages swapped for the set's (``SETS`` below: numba-cuda's ``cu13`` extra and
``cupy-cuda13x[ctk]`` for CUDA 13) and the set's own additions (the PyTorch release). The lock is
every package those requirements need, pinned with ``==`` and the sha256 of each wheel, for one
target: CPython ``PYTHON`` on Linux x86-64 with manylinux wheels up to glibc 2.28 (the image's
Ubuntu 24.04 has 2.39).

The rule ``check`` enforces (a lock need not be the newest solution, only a correct one):

1. every requirement is pinned, at a version its specifier accepts (a pyproject.toml bump that was not
   re-locked fails here, without the registry);
2. every pin has a wheel for the target on the registry, whose sha256 is one the lock lists;
3. every requirement that a pin's wheel METADATA declares, with its markers evaluated for the target
   (not for the Python running the check) and with the extras asked of it, is pinned at a version it
   accepts, and the pin supports the target Python (Requires-Python);
4. every pin is needed by a requirement (no stale pin);
5. where uv is installed, uv resolves the requirements with the lock's pins as constraints and gets
   exactly the lock's set (a second, independent resolver).

Newer releases on the registry are allowed drift: ``compile --upgrade`` takes them deliberately.
Wheel METADATA comes from pip's ``--dry-run --no-deps --report`` with fast-deps, which reads it out
of each wheel with HTTP range requests (no wheel is downloaded), and is cached in
``build/locks/metadata.json``. pip's own full resolve is not used for the check: it evaluates
environment markers for the running interpreter, not for ``--python-version``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from .. import atomicfile

# The image's Python: python3 of its Ubuntu 24.04 base (docker/Dockerfile; tests/unit/test_locks.py
# checks the two agree).
PYTHON = "3.12"
PYTHON_FULL = "3.12.3"
GLIBC = (2, 28)
UV_PLATFORM = f"x86_64-manylinux_{GLIBC[0]}_{GLIBC[1]}"
EXTRAS = ("gpu", "hub")

# What environment markers see on the target (PEP 508).
TARGET_ENV = {
    "implementation_name": "cpython",
    "implementation_version": PYTHON_FULL,
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": PYTHON_FULL,
    "python_version": PYTHON,
    "sys_platform": "linux",
}

# pip matches each --platform tag exactly: name every manylinux tag the target accepts.
PIP_PLATFORMS = ([f"manylinux_2_{n}_x86_64" for n in range(GLIBC[1], 4, -1)]
                 + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"])

# What pip prints when it cannot reach an index (as opposed to an index that lacks a release).
_UNREACHABLE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                "Name or service not known", "Network is unreachable", "Connection refused", "ConnectTimeoutError",
                "ProxyError", "Max retries exceeded", "ReadTimeoutError", "SSLError", "dns error",
                "error sending request", "Could not connect", "tcp connect error")
_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)==([^\s;]+)")
_EXCLUDED = re.compile(r"Cannot install ([A-Za-z0-9_.\-]+)==(\S+) because these package versions have conflicting")


@dataclass(frozen=True)
class LockSet:
    name: str
    cuda: str
    serves: str
    replace: dict          # canonical name in pyproject.toml -> the requirement that takes its place
    add: tuple = ()        # requirements of this set only
    why: tuple = ()        # one line per replacement/addition, written into the lock's header


# numba-cuda 0.30.4 registers np.row_stack, which NumPy 2.5 removed: with NumPy 2.5 (which needs Python
# 3.12, so CI on 3.11 never sees it) no kernel compiles. Seen on an H200 with the cuda13 set's packages.
NUMPY_CAP = "numpy<2.5"
NUMPY_WHY = "numpy<2.5: numba-cuda 0.30.4 uses np.row_stack, which NumPy 2.5 removed (no kernel compiles)"

# The Kubernetes chart's hub (z2jh 4.4.0) runs JupyterHub 5.5; a trainee's server from this image talks to
# it, and JupyterHub warns that another major version can fail sign-ins (tests/unit/test_delivery_refs.py).
HUB_CAP = "jupyterhub>=5.5,<6"
HUB_WHY = "jupyterhub<6: the same major version as the Kubernetes chart's hub (JupyterHub 5.5)"

SETS = {
    "cuda13": LockSet(
        name="cuda13", cuda="13",
        serves="NVIDIA driver >= 580; compute capability 7.5 (Turing) and newer",
        replace={"numba-cuda": "numba-cuda[cu13]", "cupy-cuda12x": "cupy-cuda13x[ctk]"},
        add=("torch==2.13.0", "cuda-toolkit[nvcc]==13.*", NUMPY_CAP, HUB_CAP),
        why=("numba-cuda[cu13] and cupy-cuda13x[ctk] in place of the CUDA 12 packages: their CUDA 13 libraries come as wheels",
             "torch==2.13.0: the release CI tests (.ci/run); on Linux it needs cuda-bindings 13",
             "cuda-toolkit[nvcc]: ptxas for lab 04's register reports (numba-cuda's cu13 extra has no ptxas)",
             NUMPY_WHY, HUB_WHY),
    ),
    "cuda12": LockSet(
        name="cuda12", cuda="12",
        serves="NVIDIA driver >= 525; compute capability 7.0 (Volta) and newer",
        replace={"cupy-cuda12x": "cupy-cuda12x[ctk]"},
        add=("torch>=2.5,<2.11", NUMPY_CAP, HUB_CAP),
        why=("cupy-cuda12x[ctk]: CuPy's CUDA 12 libraries as wheels, for a host with only the driver",
             "torch<2.11: 2.10 is the last release whose Linux wheels use CUDA 12 (2.11 and later need cuda-bindings 13)",
             NUMPY_WHY, HUB_WHY),
    ),
}
DEFAULT_SET = "cuda13"


class LockError(Exception):
    """A lock file that cannot be read, or a tool that is missing."""


class RegistryUnreachable(Exception):
    """The package index could not be reached: the check could not finish."""


# ---------------------------------------------------------------------------------------------
# requirements and lock files


def repo_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "docker").is_dir():
            return candidate
    pkg_root = Path(__file__).resolve().parents[2]  # techday/<subpackage>/<module>.py
    if (pkg_root / "pyproject.toml").is_file():
        return pkg_root
    raise LockError("cannot find the repository (pyproject.toml and docker/): run inside it or pass --root")


def lock_path(root: Path, name: str) -> Path:
    return root / "docker" / "locks" / f"{name}.txt"


def requirements(root: Path, lockset: LockSet) -> list[Requirement]:
    """The set's requirements: pyproject.toml's runtime set and extras, CUDA packages swapped."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    raw = list(project["dependencies"])
    for extra in EXTRAS:
        raw += project.get("optional-dependencies", {}).get(extra, [])
    out: dict[str, Requirement] = {}
    for text in raw:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in lockset.replace:
            new = Requirement(lockset.replace[name])
            new.specifier = req.specifier if not new.specifier else new.specifier
            new.marker = req.marker
            req = new
        key = str(req)
        out.setdefault(key, req)
    for text in lockset.add:
        req = Requirement(text)
        out[str(req)] = req
    return list(out.values())


@dataclass
class Pin:
    name: str              # canonical
    version: str
    hashes: set = field(default_factory=set)
    line: int = 0
    size: int | None = None


@dataclass
class Lock:
    path: Path
    pins: dict             # canonical name -> Pin
    header: list


def parse_lock(path: Path) -> Lock:
    """A requirements file of ``name==version --hash=sha256:...`` entries (what ``compile`` writes)."""
    if not path.is_file():
        raise LockError(f"{path}: no such lock file")
    pins: dict[str, Pin] = {}
    header: list[str] = []
    logical: list[tuple[int, str]] = []
    buf, start, body = "", 0, False
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a ValueError: it ended the command with a traceback
        raise LockError(f"{path}: not UTF-8 text (byte {exc.start}): not a lock `techday locks compile` wrote") from None
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            if not body and stripped:
                header.append(stripped[1:].strip())
            continue
        body = True
        if not buf:
            start = n
        piece = stripped.split(" #", 1)[0].rstrip()
        if piece.endswith("\\"):
            buf += piece[:-1].strip() + " "
            continue
        logical.append((start, (buf + piece).strip()))
        buf = ""
    if buf:
        logical.append((start, buf.strip()))
    for n, text in logical:
        words = text.split()
        spec, opts = words[0], words[1:]
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", spec)
        if not m:
            raise LockError(f"{path.name}:{n}: {spec!r} is not a pin (name==version, no extras or markers)")
        name = canonicalize_name(m.group(1))
        if name in pins:
            raise LockError(f"{path.name}:{n}: {name} is pinned twice (also on line {pins[name].line})")
        pin = Pin(name, m.group(2), line=n)
        for opt in opts:
            if not opt.startswith("--hash=sha256:"):
                raise LockError(f"{path.name}:{n}: unexpected option {opt!r}")
            pin.hashes.add(opt.split(":", 1)[1])
        if not pin.hashes:
            raise LockError(f"{path.name}:{n}: {name}=={pin.version} has no --hash (the image installs with --require-hashes)")
        pins[name] = pin
    if not pins:
        raise LockError(f"{path}: no pins")
    return Lock(path, pins, header)


def header_totals(lock: Lock) -> tuple[int, float] | None:
    """(wheels, MB) as the header states them."""
    for line in lock.header:
        m = re.search(r"(\d+) wheels, ([\d.]+) MB", line)
        if m:
            return int(m.group(1)), float(m.group(2))
    return None


# ---------------------------------------------------------------------------------------------
# the rule


@dataclass
class Meta:
    """What the check needs of one wheel's METADATA."""

    name: str
    version: str
    requires_dist: list
    requires_python: str | None = None
    sha256: str | None = None
    yanked: bool = False


def _marker_true(marker: Marker | None, extra: str) -> bool:
    if marker is None:
        return True
    return marker.evaluate({**TARGET_ENV, "extra": extra})


def _applies(req: Requirement) -> bool:
    return _marker_true(req.marker, "")


def top_level_problems(reqs: list[Requirement], pins: dict) -> list[str]:
    """Rule 1: each requirement is pinned at a version its specifier accepts."""
    problems = []
    for req in reqs:
        if not _applies(req):
            continue
        name = canonicalize_name(req.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{req} is required (pyproject.toml, for this set) but the lock has no {name}")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req} is required (pyproject.toml, for this set) but the lock pins {name}=={pin.version}")
    return problems


def consistency_problems(reqs: list[Requirement], pins: dict, metas: dict) -> list[str]:
    """Rules 3 and 4 over the wheels' metadata. ``metas`` maps canonical names to :class:`Meta`; a pin
    without metadata (not on the registry) is checked only as the target of others' requirements."""
    asked: dict[str, set] = {name: set() for name in pins}     # extras asked of each pin
    done: dict[str, set] = {name: set() for name in pins}      # extras whose requirements were followed
    edges: list[tuple[str, str, Requirement]] = []             # (requirer as name[extra], target, requirement)
    required_by: dict[str, list] = {}
    frontier: list[str] = []
    for req in reqs:
        if _applies(req) and canonicalize_name(req.name) in pins:
            name = canonicalize_name(req.name)
            asked[name] |= {canonicalize_name(e) for e in req.extras}
            frontier.append(name)
    reached: set = set()
    while frontier:
        name = frontier.pop()
        reached.add(name)
        meta = metas.get(name)
        todo = ({""} | asked[name]) - done[name]
        if meta is None or not todo:
            continue
        done[name] |= todo
        for text in meta.requires_dist:
            req = Requirement(text)
            for extra in sorted(todo):
                # under an extra, only what that extra adds (the rest was followed under "")
                if not _marker_true(req.marker, extra) or (extra and _marker_true(req.marker, "")):
                    continue
                target = canonicalize_name(req.name)
                who = f"{name}[{extra}]" if extra else name
                edges.append((who, target, req))
                required_by.setdefault(target, []).append(f"{who}=={pins[name].version} ({_text(req)})")
                if target in pins:
                    asked[target] |= {canonicalize_name(e) for e in req.extras}
                    if target not in reached or ({""} | asked[target]) - done[target]:
                        frontier.append(target)
    problems = []
    for who, target, req in edges:
        owner = who.split("[")[0]
        pin = pins.get(target)
        if pin is None:
            problems.append(f"{who}=={pins[owner].version} requires {_text(req)}, which the lock does not pin")
        elif not req.specifier.contains(pin.version, prereleases=True):
            others = [r for r in required_by.get(target, []) if not r.startswith(f"{who}==")]
            also = f"; {target} is also required by " + ", ".join(others) if others else ""
            problems.append(f"conflict: {who}=={pins[owner].version} requires {_text(req)}, but the lock pins "
                            f"{target}=={pin.version}{also}")
    for name, meta in sorted(metas.items()):
        if meta.requires_python and not SpecifierSet(meta.requires_python).contains(PYTHON_FULL, prereleases=True):
            problems.append(f"{name}=={meta.version} requires Python {meta.requires_python}, not {PYTHON_FULL}")
        if meta.yanked:
            problems.append(f"{name}=={meta.version} is yanked on the registry")
    for name in sorted(set(pins) - reached):
        problems.append(f"{name}=={pins[name].version} is pinned but nothing in the set requires it (a stale pin)")
    return problems


def _text(req: Requirement) -> str:
    """A requirement without its marker: ``cuda-bindings<14,>=13.0.3``."""
    return str(req).split(";")[0].strip()


# ---------------------------------------------------------------------------------------------
# the registry, through pip and uv


def _pip_metadata(pins: dict, tmp: Path, cache: Path | None = None, jobs: int = 6) -> tuple[dict, list[str]]:
    """Wheel METADATA for every pin, in ``jobs`` pip processes at once: ``pip install --dry-run --no-deps
    --report`` with fast-deps, which reads METADATA out of the wheel with HTTP range requests (this
    registry's index advertises no metadata files, and without fast-deps pip downloads every wheel).
    A wheel's metadata never changes, so what was read is kept in ``cache`` (a JSON file) by name,
    version and target. Returns ({name: Meta}, [pins the registry has no wheel of for the target])."""
    from concurrent.futures import ThreadPoolExecutor

    known = _load_cache(cache)
    metas = {n: Meta(**known[_key(p)]) for n, p in pins.items() if _key(p) in known}
    names = sorted(n for n in pins if n not in metas)
    chunks = [names[i::jobs] for i in range(jobs) if names[i::jobs]]
    missing = []
    if chunks:
        _probe(pins[names[0]], tmp / "probe")
        with ThreadPoolExecutor(len(chunks)) as pool:
            results = list(pool.map(lambda ic: _pip_chunk({n: pins[n] for n in ic[1]}, tmp / f"chunk{ic[0]}"),
                                    enumerate(chunks)))
        for got, miss in results:
            metas.update(got)
            missing += miss
            known.update({_key(pins[n]): m.__dict__ for n, m in got.items()})
        _save_cache(cache, known)
    return metas, sorted(missing)


def _key(pin: Pin) -> str:
    return f"{pin.name}=={pin.version} cp{PYTHON.replace('.', '')} manylinux_{GLIBC[0]}_{GLIBC[1]}_x86_64"


def _load_cache(cache: Path | None) -> dict:
    if cache is None or not cache.is_file():
        return {}
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(cache: Path | None, known: dict) -> None:
    if cache is None:
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    merged = {**_load_cache(cache), **known}          # another process may have written meanwhile
    part = cache.with_name(f"{cache.name}.{os.getpid()}")
    part.write_text(json.dumps(merged, indent=0, sort_keys=True), encoding="utf-8")
    os.replace(part, cache)


def _pip_cmd(reqfile: Path, report: Path, tmp: Path, retries: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--no-deps",
           "--disable-pip-version-check", "--use-feature=fast-deps", "--only-binary=:all:", "--python-version", PYTHON,
           "--implementation", "cp", "--target", str(tmp / "target"), "--report", str(report),
           "--timeout", os.environ.get("TECHDAY_LOCKS_TIMEOUT", "30"), "-r", str(reqfile)]
    if retries is not None:
        cmd += ["--retries", str(retries)]
    for platform in PIP_PLATFORMS:
        cmd += ["--platform", platform]
    return cmd


def _probe(pin: Pin, tmp: Path) -> None:
    """One pin with one retry: an unreachable index is told apart quickly (pip names the connection
    error only when it retries), before six pip processes try every pin."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "pins.txt").write_text(f"{pin.name}=={pin.version}\n", encoding="utf-8")
    out = subprocess.run(_pip_cmd(tmp / "pins.txt", tmp / "report.json", tmp, retries=1),
                         capture_output=True, text=True)
    log = out.stdout + out.stderr
    if out.returncode != 0 and any(marker in log for marker in _UNREACHABLE):
        raise RegistryUnreachable(_last_lines(log))


def _pip_chunk(todo: dict, tmp: Path) -> tuple[dict, list[str]]:
    tmp.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    report = tmp / "report.json"
    while todo:
        reqfile = tmp / "pins.txt"
        reqfile.write_text("".join(f"{p.name}=={p.version}\n" for p in todo.values()), encoding="utf-8")
        report.unlink(missing_ok=True)
        out = subprocess.run(_pip_cmd(reqfile, report, tmp), capture_output=True, text=True)
        log = out.stdout + out.stderr
        if out.returncode == 0:
            break
        if any(marker in log for marker in _UNREACHABLE):
            raise RegistryUnreachable(_last_lines(log))
        # With --no-deps a pin can fail only for want of a wheel, or by a pip constraint of this machine.
        m = _NO_MATCH.search(log) or _EXCLUDED.search(log)
        if m and canonicalize_name(m.group(1)) in todo:
            name = canonicalize_name(m.group(1))
            missing.append(f"{name}=={todo.pop(name).version}")
            continue
        raise LockError("pip could not read the pins' metadata:\n" + _last_lines(log))
    metas = {}
    if todo and report.exists():
        for item in json.loads(report.read_text(encoding="utf-8"))["install"]:
            md = item["metadata"]
            name = canonicalize_name(md["name"])
            metas[name] = Meta(name, md["version"], md.get("requires_dist", []), md.get("requires_python"),
                               item.get("download_info", {}).get("archive_info", {}).get("hashes", {}).get("sha256"),
                               bool(item.get("is_yanked")))
    return metas, missing


def _last_lines(log: str, n: int = 12) -> str:
    lines = [line for line in log.splitlines() if line.strip() and "is ignored: it is neither" not in line]
    return "\n".join(lines[-n:])


def _uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else None


def _uv_compile(args: list[str]) -> subprocess.CompletedProcess:
    uv = _uv()
    if uv is None:
        raise LockError("uv is not installed (pip install uv, or pip install -e '.[test]')")
    cmd = [uv, "pip", "compile", "--quiet", "--python-platform", UV_PLATFORM, "--python-version", PYTHON,
           "--no-config", *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0 and any(m.lower() in (out.stderr or "").lower() for m in _UNREACHABLE):
        raise RegistryUnreachable(_last_lines(out.stderr))
    return out


def _write_requirements(path: Path, reqs: list[Requirement]) -> None:
    path.write_text("".join(f"{r}\n" for r in reqs), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# check


@dataclass
class CheckResult:
    name: str
    path: Path
    pins: int = 0
    problems: list = field(default_factory=list)
    unchecked: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def default_cache(root: Path) -> Path:
    return root / "build" / "locks" / "metadata.json"


def check(root: Path, lockset: LockSet, path: Path | None = None, use_uv: bool = True,
          cache: Path | None = None) -> CheckResult:
    """Apply the rule (module docstring) to one lock. ``cache``: the wheel-metadata cache (None: none).
    Raises RegistryUnreachable, LockError."""
    path = path or lock_path(root, lockset.name)
    res = CheckResult(lockset.name, path)
    lock = parse_lock(path)
    res.pins = len(lock.pins)
    reqs = requirements(root, lockset)
    res.problems += top_level_problems(reqs, lock.pins)
    with tempfile.TemporaryDirectory(prefix="techday-locks-") as tmp:
        t0 = time.monotonic()
        metas, missing = _pip_metadata(lock.pins, Path(tmp), cache)
        res.seconds["metadata"] = round(time.monotonic() - t0, 1)
        for item in missing:
            res.unchecked.append(f"{item}: the registry has no wheel of it for CPython {PYTHON} on manylinux x86-64 "
                                 "(or a pip constraint of this machine excludes it); its own requirements and "
                                 "its hash were not checked (what requires it was)")
        for name, meta in metas.items():
            pin = lock.pins[name]
            if Version(meta.version) != Version(pin.version):
                res.problems.append(f"{name}: pip found {meta.version} for the pin {name}=={pin.version}")
            if meta.sha256 and meta.sha256 not in pin.hashes:
                res.problems.append(f"{name}=={pin.version}: the registry's wheel has sha256 {meta.sha256}, "
                                    "which the lock does not list (re-uploaded, or the lock was edited)")
        res.problems += consistency_problems(reqs, lock.pins, metas)
        if use_uv and _uv() is not None:
            t0 = time.monotonic()
            tmpd = Path(tmp)
            _write_requirements(tmpd / "requirements.in", reqs)
            (tmpd / "constraints.txt").write_text("".join(f"{p.name}=={p.version}\n" for p in lock.pins.values()),
                                                  encoding="utf-8")
            out = _uv_compile([str(tmpd / "requirements.in"), "-c", str(tmpd / "constraints.txt"),
                               "--no-header", "--no-annotate", "-o", str(tmpd / "uv.txt")])
            res.seconds["uv"] = round(time.monotonic() - t0, 1)
            if out.returncode != 0:
                res.problems.append("uv cannot resolve the requirements with the lock's pins:\n" + _last_lines(out.stderr))
            else:
                got = {}
                for line in (tmpd / "uv.txt").read_text(encoding="utf-8").splitlines():
                    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
                    if m:
                        got[canonicalize_name(m.group(1))] = m.group(2)
                want = {name: pin.version for name, pin in lock.pins.items()}
                for name in sorted(set(got) - set(want)):
                    res.problems.append(f"uv's resolution needs {name}=={got[name]}, which the lock does not pin")
                for name in sorted(set(want) - set(got)):
                    res.problems.append(f"uv's resolution does not need {name}=={want[name]} (a stale pin)")
        elif use_uv:
            res.notes.append("uv is not installed: the second, independent resolve was skipped")
    if missing and not res.problems:
        res.notes.append("the image build needs every pin: it would fail on the unchecked ones")
    return res


# ---------------------------------------------------------------------------------------------
# compile


def _pick_wheel(wheels: list[dict]) -> dict:
    """The wheel pip would take on the target: the most specific tag the target supports."""
    from urllib.parse import unquote

    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import parse_wheel_filename

    interp = (int(PYTHON.split(".")[0]), int(PYTHON.split(".")[1]))
    platforms = PIP_PLATFORMS + ["linux_x86_64"]
    order = list(cpython_tags(interp, platforms=platforms)) + list(compatible_tags(interp, "cp312", platforms))
    rank = {tag: i for i, tag in enumerate(order)}

    def best(wheel):
        _, _, _, tags = parse_wheel_filename(unquote(wheel["url"].rsplit("/", 1)[-1]))
        return min((rank.get(t, 1 << 30) for t in tags), default=1 << 30)

    return min(wheels, key=best)


def compile_lock(root: Path, lockset: LockSet, upgrade: bool = False, out: Path | None = None) -> tuple[Path, dict]:
    """Resolve the set with uv for the target (nothing is installed) and write the lock: the existing
    lock's pins are kept where they still fit (uv's preferences), unless ``upgrade``."""
    path = out or lock_path(root, lockset.name)
    reqs = requirements(root, lockset)
    stats = {}
    with tempfile.TemporaryDirectory(prefix="techday-locks-") as tmp:
        tmpd = Path(tmp)
        _write_requirements(tmpd / "requirements.in", reqs)
        resolved = tmpd / "resolved.txt"
        if path.exists() and not upgrade:
            shutil.copyfile(path, resolved)   # uv keeps the pins of an existing output file where it can
        t0 = time.monotonic()
        res = _uv_compile([str(tmpd / "requirements.in"), "-o", str(resolved), "--annotation-style", "line"]
                          + (["--upgrade"] if upgrade else []))
        if res.returncode != 0:
            raise LockError(f"{lockset.name}: uv cannot resolve the requirements:\n{_last_lines(res.stderr, 30)}")
        stats["resolve_s"] = round(time.monotonic() - t0, 1)
        pins, via = {}, {}
        for line in resolved.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(?:\s+#\s*via\s+(.*))?$", line.strip())
            if m:
                name = canonicalize_name(m.group(1))
                pins[name] = m.group(2)
                via[name] = re.sub(r"-r \S*requirements\.in", "the requirements", m.group(3) or "")
        # The exact wheels of these pins, with sizes and hashes (uv's pylock.toml), no resolution left.
        (tmpd / "pins.txt").write_text("".join(f"{n}=={v}\n" for n, v in pins.items()), encoding="utf-8")
        pylock = tmpd / "pylock.set.toml"
        res = _uv_compile([str(tmpd / "pins.txt"), "--no-deps", "--format", "pylock.toml", "-o", str(pylock)])
        if res.returncode != 0:
            raise LockError(f"{lockset.name}: uv cannot list the pinned wheels:\n{_last_lines(res.stderr, 30)}")
        stats["seconds"] = round(time.monotonic() - t0, 1)
        wheels = {}
        for pkg in tomllib.loads(pylock.read_text(encoding="utf-8"))["packages"]:
            name = canonicalize_name(pkg["name"])
            if not pkg.get("wheels"):
                raise LockError(f"{lockset.name}: {name}=={pkg['version']} has no wheel for the target "
                                "(the image installs wheels only)")
            wheels[name] = pkg["wheels"]
    total = 0
    body = []
    for name in sorted(pins):
        files = wheels[name]
        size = _pick_wheel(files).get("size") or 0
        total += size
        hashes = sorted({w["hashes"]["sha256"] for w in files})
        lines = [f"{name}=={pins[name]}"] + [f"    --hash=sha256:{h}" for h in hashes]
        body.append(" \\\n".join(lines) + "\n")
        note = f"{size / 1e6:.1f} MB" + (f", via {via[name]}" if via.get(name) else "")
        body.append(f"    # {note}\n")
    stats.update(wheels=len(pins), mb=round(total / 1e6))
    head = [f"The lab image's Python packages for CUDA {lockset.cuda} (docker/README.md, \"Locked install sets\").",
            f"Serves: {lockset.serves}.",
            f"Target: CPython {PYTHON} on Linux x86-64, manylinux wheels up to glibc {GLIBC[0]}.{GLIBC[1]}; "
            f"{stats['wheels']} wheels, {stats['mb']} MB.",
            f"Written by `python -m techday locks compile {lockset.name}` (uv; nothing installed); checked by",
            "`python -m techday locks check` (tests/unit/test_locks.py). Install it with",
            f"`pip install --require-hashes --only-binary=:all: -r docker/locks/{lockset.name}.txt`, then the project",
            "with `pip install --no-deps -e .`.",
            "Requirements: pyproject.toml's runtime set with the gpu and hub extras, for this CUDA major:"]
    head += [f"  {line}" for line in lockset.why]
    head += [f"  {r}" for r in reqs]
    text = "".join(f"# {line}\n".replace("#  \n", "#\n") for line in head) + "".join(body)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomicfile.write_text(path, text)  # the committed lock stays whole if the command stops here
    return path, stats
