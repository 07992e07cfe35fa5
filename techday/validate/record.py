"""What ``techday validate`` checked, and on exactly which tree: a record that lets the test suite read
a check's result instead of running the same check on the same tree a second time.

CI runs ``techday validate`` and then ``pytest`` on one checkout; three tests repeat validate's heavy
steps (every lab headless, the grading contract of every lab, the kernel check of the whole course:
about a tenth of the suite's time). With this record they make their own assertions on validate's
outputs, and run the check themselves whenever the record does not stand for the tree in front of
them.

The fingerprint is SHA-256 over:

- the content and path of every file under ``techday/``, ``labs/``, ``course/``, ``grading/`` and of
  ``pyproject.toml`` (what decides a lab's run, its grading and its kernels; ``build/`` is output),
  but the course's documents for people (``course/**/*.md``: guides and instructor notes, which no
  check of validate reads);
- the Python version, and the name and version of every installed distribution that ``techday``
  requires, followed through their own requirements whose markers hold here (installing the test
  and hub extras afterwards, as CI does, does not change it; upgrading NumPy or nbgrader does);
- the environment variables that change how labs run (``TECHDAY_*`` but the build folder, ``NUMBA_*``,
  ``CUDA_*``).

validate computes it before its first step and after its last, and writes the record only when the
two agree (a file changed while validate ran leaves no record). A test uses the record only when the
fingerprint it computes now is the same, the step passed, every lab of the course was checked, and the
tier and scale are the ones the test asks for.

What the record does not cover: files outside those folders that a check reads (none today: a new
one must be added to ``FOLDERS``), and a result changed by hand in ``build/`` after validate wrote it
(the record is a cache for one checkout, not evidence for anyone else; the leaderboard and the
grader never read it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import site
import sys
import sysconfig
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

SCHEMA = "techday.validate-record/1"
FOLDERS = ("techday", "labs", "course", "grading")
FILES = ("pyproject.toml",)
ENV_PREFIXES = ("TECHDAY_", "NUMBA_", "CUDA_")
ENV_IGNORED = ("TECHDAY_BUILD",)
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}


def _files(root: Path):
    for folder in FOLDERS:
        base = root / folder
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file() and not SKIP_PARTS & set(path.relative_to(root).parts) and not (
                        folder == "course" and path.suffix == ".md"):
                    yield path
    for name in FILES:
        if (root / name).is_file():
            yield root / name


def _requirement_names(dist) -> list[str]:
    """The distributions ``dist`` requires here: its markers evaluated for this interpreter with no
    extra asked for (``aiohttp; extra == "http"`` and ``tomli; python_version < "3.11"`` drop out)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging comes with Jupyter; without it, every requirement but an extra's
        return [m.group(1) for line in dist.requires or [] if not re.search(r"\bextra\s*==", line)
                if (m := re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line))]
    names = []
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(top: str = "techday-gpu-lab") -> list[str]:
    """``name==version`` of ``top`` and everything it requires, transitively, as installed here."""
    installed = {}
    # The installation's own folders, not sys.path: a process that imported setuptools has its vendored
    # copies (importlib-metadata, zipp, tomli) on sys.path too, and validate's steps import it.
    folders = list(dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"],
                                  sysconfig.get_paths()["platlib"]]))
    for dist in metadata.distributions(path=folders):
        name = dist.metadata.get("Name")
        if name:
            installed.setdefault(_norm(name), dist)
    seen, todo = set(), [_norm(top)]
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo += [_norm(n) for n in _requirement_names(installed[name])]
    return sorted(f"{n}=={installed[n].version}" for n in seen)


def snapshot(root: Path) -> dict[str, str]:
    """What the fingerprint is made of, one entry per input: ``file:<path>`` -> content hash, then the
    Python version, each required distribution and each variable (see the module docstring)."""
    root = Path(root).resolve()
    items = {f"file:{path.relative_to(root)}": hashlib.sha256(path.read_bytes()).hexdigest() for path in _files(root)}
    items["python"] = sys.version
    items.update({f"dist:{line.split('==')[0]}": line for line in runtime_distributions()})
    items.update({f"env:{key}": os.environ[key] for key in sorted(os.environ)
                  if key.startswith(ENV_PREFIXES) and key not in ENV_IGNORED})
    return items


def digest(items: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(items):
        h.update(f"{key}\0{items[key]}\0".encode())
    return h.hexdigest()


def fingerprint(root: Path) -> str:
    """The fingerprint of the checkout at ``root`` in this environment (see the module docstring)."""
    return digest(snapshot(root))


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The inputs that differ between two snapshots, named (at most 10)."""
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return keys[:10] + ([f"... and {len(keys) - 10} more"] if len(keys) > 10 else [])


def record_path(build_dir: Path) -> Path:
    return Path(build_dir) / "validate" / "record.json"


def write(build_dir: Path, before: dict[str, str], root: Path, *, labs: list[str], all_labs: bool, tier: str,
          scale: str, steps: dict[str, int], outputs: dict[str, str]) -> tuple[Path | None, list[str]]:
    """Write the record when the tree's snapshot now equals ``before`` (taken before the first step);
    else remove any old record. Returns the path written (or None) and the inputs that changed."""
    path = record_path(build_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = differences(before, snapshot(root))
    if changed:
        path.unlink(missing_ok=True)
        return None, changed
    doc = {"schema": SCHEMA, "fingerprint": digest(before),
           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "tier": tier, "scale": scale, "labs": labs, "all_labs": all_labs, "steps": steps, "outputs": outputs}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path, []


def reusable(build_dir: Path, root: Path, step: str, *, tier: str, scale: str) -> tuple[Path | None, str]:
    """validate's output folder of ``step`` when its record stands for this tree, every lab, ``tier``
    and ``scale`` and the step passed; else None. The second value says why, either way."""
    path = record_path(build_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"no record of techday validate at {path}"
    except (OSError, ValueError) as exc:
        return None, f"unreadable record {path}: {exc}"
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return None, f"{path}: not a {SCHEMA} record"
    if not doc.get("all_labs") or doc.get("tier") != tier or doc.get("scale") != scale:
        return None, (f"the record is of labs {doc.get('labs')} at tier {doc.get('tier')}, scale {doc.get('scale')}; "
                      f"this check needs every lab at tier {tier}, scale {scale}")
    if doc.get("steps", {}).get(step) != 0:
        return None, f"step {step!r} did not pass in the record ({doc.get('steps', {}).get(step)})"
    out = doc.get("outputs", {}).get(step)
    if not out:
        return None, f"the record names no output folder of step {step!r} (written by an older techday validate)"
    if not Path(out).is_dir():
        return None, f"step {step!r}: its output folder {out} is gone"
    now = fingerprint(root)
    if now != doc.get("fingerprint"):
        return None, "the tree or its environment changed since techday validate ran (fingerprint differs)"
    return Path(out), f"techday validate checked this very tree ({now[:12]}) at {doc.get('finished')}"
