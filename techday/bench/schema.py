"""The results document, schema ``techday.bench/2``: bounded reading, an allow-list schema, consistency.

::

    {
      "schema": "techday.bench/2",
      "run_id": "<32 hex>",              # one per run: a copied file is a duplicate
      "started": "2026-11-22T02:00:00+00:00", "seconds": 41.2,
      "mode": "quick" | "full" | "ci", "tier": "gpu" | "cpu",
      "label": "GPU (NVIDIA H100 80GB HBM3)" | "CPU: ... (not a GPU figure)" (techday.tier.figure_label),
      "fixture": true,                   # only in test fixtures: never a measurement
      "environment": {"tier", "device", "device_hash", "gpu": {...} | null, "driver_version",
                      "cuda_runtime", "versions": {...}, "load": {"before", "after", "cpu_count"}, ...},
      "limits": {"source", "dram_gbs", "fp32_gflops", "tf32_gflops", "fp16_gflops", "bf16_gflops",
                 "published": {...} | null, "mig": {...}, "notes": [...]},
      "plan": {"n", "side", "mm", "mm_cpu", "hist_n", "sweep", "transfer_bytes"},
      "results": [{"family", "kernel", "impl", "device", "dtype", "size", "status", "reason",
                   "bytes", "flops", "intensity", "metric": "gbs" | "gflops" | "us",
                   "seconds": {"median", "min", "max", "spread", "reps", "clock", "calls",
                               "samples": [...], "audit": [...]},   # every repetition, in order
                   "wall": {"setup", "check", "timing", "total"},
                   "gbs", "gflops", "us", "value", "best", "limit_key", "limit", "fraction", "label",
                   "warnings": [...]}, ...],
      "warnings": [...], "notes": [...]
    }

Rates: ``gbs = bytes / seconds / 1e9``, ``gflops = flops / seconds / 1e9``; ``value`` from the median
time, ``best`` from the fastest repetition (BabelStream quotes the best); ``fraction = value / limit``
(GPU tier only).

Version 2 is the harness's contract, held by :func:`validate` (:func:`contract`): every timed figure
carries its repetitions (``samples``, seconds per call, in the order they were timed) and its
:data:`AUDIT_REPS` audit repetitions (``audit``: outputs poisoned before each, see
:mod:`techday.bench.core`), and the median, fastest, slowest, spread and count must be those of the
samples; the count is one the harness takes (:data:`MIN_REPS_TIMED` to :data:`HOST_MAX_REPS` on
``perf_counter``, :data:`DEVICE_MAX_REPS` on CUDA events), as are the back-to-back ``calls``; the
repetitions fit in the host time the figure records (``wall``), the figures' host times in the run's
own ``seconds``, and the run started no earlier than version 2 existed (:data:`SCHEMA_SINCE`); the
labels are those :func:`techday.tier.figure_label` writes for the run's tier and device. Version 1
(no samples, no audit) is read only as the kit's own committed runs (:mod:`.leaderboard` decides
where a file lies); any other version is refused by name.

Reading a stranger's file (:func:`read_document`) checks the size caps before any parsing work: the
file's size, then its count of strings (from its quotes), its nesting depth and its count of values
(scanned without parsing), then the parse itself refuses NaN, Infinity, over-long integers and repeated
keys (a number that overflows to infinity is refused by the allow-list, as any number not finite). :func:`validate` then walks an allow-list: every key
must be known and of its type, every string within its length, every list within its count; an
unknown key is a problem, not something to ignore. Only then are the figures checked against each
other. The leaderboard goes further and recomputes every figure (:mod:`techday.bench.verify`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from pathlib import Path

from .limits import limit_for

SCHEMA = "techday.bench/2"
LEGACY = "techday.bench/1"  # read only where the kit keeps its own committed runs of it
SCHEMA_FAMILY = "techday.bench/"
# The day version 2 (samples and audits) was first written: a run of it cannot have started before.
SCHEMA_SINCE = "2026-12-07"
# The harness's repetitions (techday.bench.core and .runner use these): at least MIN_REPS_TIMED timed
# repetitions, at most HOST_MAX_REPS with perf_counter and DEVICE_MAX_REPS with CUDA events; a warm
# kernel's back-to-back calls between one pair of events at most MAX_WARM_CALLS; AUDIT_REPS audit
# repetitions after the timed ones, and a figure whose fastest audit repetition took more than
# AUDIT_FACTOR times its timed median is wrong (the timed calls skipped work the audited ones did).
MIN_REPS_TIMED = 10
HOST_MAX_REPS = 100
DEVICE_MAX_REPS = 200
MAX_WARM_CALLS = 1000
AUDIT_REPS = 3
AUDIT_FACTOR = 3.0
# Samples a file may hold in all (a full GPU run: about 45 timed figures of at most 203 repetitions).
MAX_SAMPLES = 20_000
STATUSES = ("ok", "wrong", "error", "skipped", "checked")
METRICS = ("gbs", "gflops", "us")
CLOCKS = ("cuda-event", "perf_counter")
MAX_FRACTION = 1.05  # a figure above 105 % of its device's limit is not believable

# Caps, checked before anything else. A full GPU run is about 70 results and 60 KB.
MAX_FILE_BYTES = 2 * 2**20
MAX_DEPTH = 8           # the deepest real path is results[i].seconds.median: depth 4
MAX_RESULTS = 1000
MAX_LIST = 64           # notes, warnings, families, sweep
MAX_NAME = 128          # identifiers and names: GPU name, family, kernel, impl, versions
MAX_TEXT = 2000         # reasons, notes, tracebacks
MAX_INT_DIGITS = 20     # any integer in a results file fits in 64 bits
# Values (elements of arrays and objects, counted by their commas and brackets outside strings) a file
# may hold: the largest file the schema accepts (1,000 results, every field, 64 warnings each) holds
# about 100,000. Counted before parsing: 2 MiB of "1,1,1,..." parsed one Python call per number, 1.1 s.
MAX_VALUES = 150_000

# Characters no name or reason needs: C0/C1 controls (terminal escapes) and bidirectional overrides.
_BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A JSON string, or an unterminated one to the end of the text: every match succeeds where it starts, so
# the scan is one pass (without the second ending, each '"' of '"\\"\\"\\"...' started a scan to the end
# of the file: quadratic, hours for 2 MiB). A run of plain characters is one step, not one alternation
# per character: a valid 2 MiB file of notes and tracebacks took 105 ms to scan, now 14 ms.
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)


class ReadError(ValueError):
    """A results file that cannot be read within the caps; the message is the reason."""


# ---------------------------------------------------------------------------------------------
# Bounded reading


def nesting_depth(raw: bytes) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, without parsing it (string contents skipped)."""
    return _scan(raw)[0]


def _scan(raw: bytes) -> tuple[int, int]:
    """(the deepest ``[``/``{`` nesting, the values: commas and opening brackets) of a JSON text,
    without parsing it (string contents skipped), in one pass."""
    import numpy as np

    bare = _STRINGS.sub(b'""', raw)
    a = np.frombuffer(bare, dtype=np.uint8)
    opens = (a == ord("[")).astype(np.int32) + (a == ord("{"))
    step = opens - (a == ord("]")) - (a == ord("}"))
    depth = int(np.cumsum(step).max()) if step.size else 0
    return depth, int(opens.sum()) + int(np.count_nonzero(a == ord(",")))


def _no_constants(name):
    raise ReadError(f"{name} is not a number a results file may hold")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ReadError(f"an integer of {len(text)} digits")
    return int(text)


def _pairs(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ReadError(f"key {short(key)} appears twice in one object (which one counts is ambiguous)")
        out[key] = value
    return out


def parse(raw: bytes):
    """Parse a results file's bytes within the caps; raises :class:`ReadError` with the reason."""
    if len(raw) > MAX_FILE_BYTES:
        raise ReadError(f"file of {len(raw):,} bytes, above the cap of {MAX_FILE_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ReadError("malformed: not UTF-8 text") from None
    # Every string is a key or an element, so a file within the cap of values holds at most twice as
    # many strings. Counted from its quotes first (those after a backslash left out, so never more than
    # the strings' own): 2 MiB of '"","",...' cost the string scan 0.36 s before it was refused.
    strings = (raw.count(b'"') - raw.count(b'\\"')) // 2
    if strings > 2 * MAX_VALUES + 1:
        raise ReadError(f"{strings:,} strings, above the cap of {2 * MAX_VALUES + 1:,} (no results file holds so many)")
    depth, values = _scan(raw)
    if depth > MAX_DEPTH:
        raise ReadError(f"nested {depth} levels deep, above the cap of {MAX_DEPTH}")
    if values > MAX_VALUES:
        # Before the parse, which costs one Python call per number or object: a file of a million
        # numbers (or empty strings, or {}) within the size cap took a second to be refused.
        raise ReadError(f"{values:,} values, above the cap of {MAX_VALUES:,} (no results file holds so many)")
    try:
        # Floats are parsed by json's own C code (a Python call per number cost a version-2 file, which
        # records every repetition, about 30 ms here); one that overflows to infinity is refused by
        # structure(), as any number that is not finite.
        return json.loads(text, parse_constant=_no_constants, parse_int=_int, object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        raise ReadError(f"malformed JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise ReadError("nested too deeply") from None


def _open_below(root, parts) -> int:
    """Open ``root/parts...`` one name at a time from ``root``'s descriptor, following no symbolic link
    below ``root``: the file read is the one found where it was listed, whatever was put in place of
    the file or a folder above it since (a check on the path, then an open of the path, reads what the
    path names at the open: a link put there in between was followed)."""
    if not parts:
        raise OSError(errno.ENOENT, "no file named")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if os.open not in os.supports_dir_fd or not nofollow:  # no openat: the path, refused if it is a link now
        if os.path.islink(os.path.join(root, *parts)):
            raise OSError(errno.ELOOP, "a symbolic link")
        return os.open(os.path.join(root, *parts), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            below = os.open(part, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow, dir_fd=fd)
            os.close(fd)
            fd = below
        return os.open(parts[-1], os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | nofollow, dir_fd=fd)
    finally:
        os.close(fd)


def read_document(path, under: tuple | None = None) -> dict:
    """Read one results file within the caps: the size is checked before a byte is parsed.

    Only a regular file is read (behind a symlink or not). It is opened without blocking and checked
    once open, so a FIFO, a socket or a terminal named ``*.json`` (which would wait for a writer
    forever) or a device (``/dev/zero``, endless) is answered at once, whatever the name pointed at
    when it was listed. ``under``: ``(root, names)``, a file found below a folder given: opened from
    ``root`` one name at a time, following no link (:func:`_open_below`)."""
    path = Path(path)
    try:
        fd = _open_below(*under) if under is not None else os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if under is not None and exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ReadError("a symbolic link (or a file) put where the board listed a plain file or folder, "
                            "after it listed it: not followed") from None
        raise ReadError(f"unreadable: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ReadError("unreadable: Is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ReadError("not a regular file (a FIFO, socket or device): nothing to read")
        if st.st_size > MAX_FILE_BYTES:
            raise ReadError(f"file of {st.st_size:,} bytes, above the cap of {MAX_FILE_BYTES:,}")
        with os.fdopen(fd, "rb") as f:
            fd = None
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ReadError(f"unreadable: {exc.strerror or exc}") from None
    finally:
        if fd is not None:
            os.close(fd)
    return parse(raw)


def short(x, n: int = 40) -> str:
    """A stranger's value quoted in a reason: its repr, cut to ``n`` characters."""
    text = repr(x) if not isinstance(x, (dict, list)) else f"a JSON {'object' if isinstance(x, dict) else 'array'}"
    return text if len(text) <= n else text[: n - 3] + "..."


# ---------------------------------------------------------------------------------------------
# The allow-list


class _T:
    """A type rule: accepted Python types (``bool`` is never a number), nullable, string cap, enum."""

    def __init__(self, *kinds, null=False, cap=MAX_NAME, enum=None, items=None, fields=None, values=None,
                 length=None):
        self.kinds, self.null, self.cap, self.enum = kinds, null, cap, enum
        self.items, self.fields, self.values, self.length = items, fields, values, length


NUM = (int, float)
S = _T(str)
TEXT = _T(str, cap=MAX_TEXT)
LABEL = _T(str, cap=2 * MAX_NAME)  # descriptions built from names: label, CPU model, OS
OPT_S = _T(str, null=True)
OPT_NUM = _T(*NUM, null=True)
N = _T(*NUM)
I = _T(int)
VERSION = _T(str, int, float, null=True)

GPU = {"name": S, "cc": S, "memory_bytes": I, "sm_count": I, "clock_mhz": N, "memory_clock_mhz": N,
       "bus_width_bits": I, "l2_bytes": I, "ecc": _T(bool, null=True), "fingerprint": S}
LOAD = {"before": OPT_NUM, "after": OPT_NUM, "cpu_count": _T(int, null=True)}
ENVIRONMENT = {"tier": S, "simulator": _T(bool), "driver_version": VERSION, "cuda_driver_api": VERSION,
               "cuda_runtime": VERSION, "host": S, "cpu": LABEL, "cpu_count": I, "os": LABEL,
               "versions": _T(dict, values=_T(str, null=True)), "gpu": _T(dict, null=True, fields=GPU),
               "device": LABEL, "device_hash": S, "load": _T(dict, fields=LOAD)}
PUBLISHED = {"name": S, "dram_gbs": N, "fp32_gflops": N, "tf32_gflops": N, "fp16_gflops": N, "bf16_gflops": N}
LIMITS = {"source": TEXT, "dram_gbs": OPT_NUM, "fp32_gflops": OPT_NUM, "tf32_gflops": OPT_NUM,
          "fp16_gflops": OPT_NUM, "bf16_gflops": OPT_NUM, "published": _T(dict, null=True, fields=PUBLISHED),
          "mig": _T(dict, fields={"memory_share": N, "sm_share": N}), "notes": _T(list, items=TEXT)}
PLAN = {"n": I, "side": I, "mm": I, "mm_cpu": I, "hist_n": I, "sweep": _T(list, items=I), "transfer_bytes": I}
SECONDS = {"median": N, "min": N, "max": N, "spread": N, "reps": I, "clock": _T(str, enum=CLOCKS), "calls": I}
# Version 2: every repetition behind the summary, and the audit repetitions (techday.bench.core).
SECONDS_V2 = {**SECONDS, "samples": _T(list, items=N, length=DEVICE_MAX_REPS),
              "audit": _T(list, items=N, length=AUDIT_REPS)}
# Host seconds spent on one figure, outside and inside the timed region: where a run's time goes.
WALL = {"setup": N, "check": N, "timing": N, "total": N}
RESULT = {"family": S, "kernel": S, "impl": S, "device": _T(str, enum=("gpu", "cpu")), "dtype": S, "size": S,
          "status": _T(str, enum=STATUSES), "reason": TEXT, "bytes": I, "flops": I, "intensity": OPT_NUM,
          "metric": _T(str, enum=METRICS), "limit_key": OPT_S, "seconds": _T(dict, fields=SECONDS),
          "gbs": OPT_NUM, "gflops": OPT_NUM, "us": OPT_NUM, "value": OPT_NUM, "best": OPT_NUM, "limit": OPT_NUM,
          "fraction": OPT_NUM, "label": S, "note": TEXT, "error": OPT_NUM, "traceback": _T(str, cap=MAX_TEXT),
          "warnings": _T(list, items=TEXT), "recheck": TEXT, "wall": _T(dict, fields=WALL)}
RESULT_V2 = {**RESULT, "seconds": _T(dict, fields=SECONDS_V2)}
TOP = {"schema": S, "run_id": S, "started": S, "seconds": N, "mode": _T(str, enum=("quick", "full", "ci")),
       "tier": _T(str, enum=("gpu", "cpu")), "label": LABEL, "fixture": _T(bool),
       "environment": _T(dict, fields=ENVIRONMENT), "limits": _T(dict, fields=LIMITS), "plan": _T(dict, fields=PLAN),
       "families": _T(list, items=S), "results": _T(list, items=_T(dict, fields=RESULT)),
       "notes": _T(list, items=TEXT), "warnings": _T(list, items=TEXT)}
TOP_V2 = {**TOP, "results": _T(list, items=_T(dict, fields=RESULT_V2))}
REQUIRED_TOP = ("schema", "run_id", "started", "mode", "tier", "environment", "limits", "plan", "results")
REQUIRED_RESULT = ("family", "kernel", "impl", "status")
REQUIRED_TIMED = ("device", "dtype", "bytes", "flops", "metric", "seconds", "value")
REQUIRED_SECONDS = ("median", "min", "max", "reps", "clock")
# What version 2 adds: the run's own duration and label, every timed figure's repetitions, audits,
# back-to-back calls, spread, label and host times.
REQUIRED_TOP_V2 = ("seconds", "label")
REQUIRED_TIMED_V2 = ("label", "wall")
REQUIRED_SECONDS_V2 = ("spread", "calls", "samples", "audit")
# Every attribute a GPU's limits and plan are computed from, and the device every run names.
REQUIRED_GPU = ("name", "cc", "memory_bytes", "sm_count", "clock_mhz", "memory_clock_mhz", "bus_width_bits", "l2_bytes")
REQUIRED_ENVIRONMENT = ("device",)


def _kind_name(rule: _T) -> str:
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false", "dict": "an object",
             "list": "an array"}
    return " or ".join(dict.fromkeys(names[k.__name__] for k in rule.kinds)) + (" or null" if rule.null else "")



def _check(value, rule: _T, where: str, problems: list[str]) -> None:
    if len(problems) > 20:
        return
    if value is None:
        if not rule.null:
            problems.append(f"{where} is null, expected {_kind_name(rule)}")
        return
    if isinstance(value, bool) and bool not in rule.kinds:
        problems.append(f"{where} is {short(value)}, expected {_kind_name(rule)}")
        return
    if not isinstance(value, rule.kinds):
        problems.append(f"{where} is {short(value)}, expected {_kind_name(rule)}")
        return
    if isinstance(value, str):
        if len(value) > rule.cap:
            problems.append(f"{where} is a string of {len(value):,} characters, above the cap of {rule.cap:,}")
        elif _BAD_CHARS.search(value):
            problems.append(f"{where} holds control or direction-override characters")
        elif rule.enum and value not in rule.enum:
            problems.append(f"{where} is {short(value)}, not one of {', '.join(rule.enum)}")
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{where} is not a finite number" + ("" if value != value else ": it overflows to infinity"))
    elif isinstance(value, list):
        cap = rule.length or (MAX_RESULTS if where == "results" else MAX_LIST)
        if len(value) > cap:
            problems.append(f"{where} has {len(value):,} entries, above the cap of {cap:,}")
            return
        if rule.items is N:  # a list of numbers (samples): C-level passes, not a Python call per number
            if set(map(type, value)) <= {int, float} and all(map(math.isfinite, value)):
                return
            bad = next(i for i, x in enumerate(value) if type(x) not in (int, float) or not math.isfinite(x))
            _check(value[bad], N, f"{where}[{bad}]", problems)
            return
        for i, item in enumerate(value):
            _check(item, rule.items, f"{where}[{i}]", problems)
    elif isinstance(value, dict):
        if rule.fields is not None:
            for key in value:
                if key not in rule.fields:
                    problems.append(f"{where}: unknown key {short(key)}")
            for key, sub in rule.fields.items():
                if key in value:
                    _check(value[key], sub, f"{where}.{key}", problems)
        elif rule.values is not None:
            if len(value) > MAX_LIST:
                problems.append(f"{where} has {len(value):,} keys, above the cap of {MAX_LIST}")
                return
            for key, item in value.items():
                if len(key) > MAX_NAME or _BAD_CHARS.search(key):
                    problems.append(f"{where}: key {short(key)} is too long or holds control characters")
                else:
                    _check(item, rule.values, f"{where}.{key}", problems)


def _iso_time(text: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def structure(doc) -> list[str]:
    """Allow-list problems of ``doc``: unknown keys, wrong types, strings and lists past their caps."""
    if not isinstance(doc, dict):
        return [f"not a results document (a JSON {type(doc).__name__}, expected an object)"]
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_FAMILY):
        return [f"not a techday.bench results file (schema {short(schema)})"]
    if schema not in (SCHEMA, LEGACY):
        version = schema[len(SCHEMA_FAMILY):]
        if version.isdigit() and len(version) < 6 and int(version) > int(SCHEMA.rsplit("/", 1)[1]):
            return [f"schema mismatch: {short(schema)} is newer than this version reads ({SCHEMA!r}): a harness "
                    "this board does not know wrote it"]
        return [f"schema mismatch: {short(schema)}, this version reads {SCHEMA!r}"]
    v2 = schema == SCHEMA
    allowed = TOP_V2 if v2 else TOP
    problems = [f"field {key!r} missing" for key in REQUIRED_TOP + (REQUIRED_TOP_V2 if v2 else ()) if key not in doc]
    top = [f"unknown key {short(k)}" for k in doc if k not in allowed]
    if problems or top:
        return problems + top
    for key, rule in allowed.items():
        if key in doc:
            _check(doc[key], rule, key, problems)
    if problems:
        return problems
    env = doc["environment"]
    problems += [f"environment: missing {k}" for k in REQUIRED_ENVIRONMENT if k not in env]
    if isinstance(env.get("gpu"), dict):
        problems += [f"environment.gpu: missing {k}" for k in REQUIRED_GPU if k not in env["gpu"]]
    samples = 0
    for i, r in enumerate(doc["results"]):
        missing = [k for k in REQUIRED_RESULT if k not in r]
        if r.get("status") == "ok":
            missing += [k for k in REQUIRED_TIMED + (REQUIRED_TIMED_V2 if v2 else ()) if k not in r]
            sec = r.get("seconds", {})
            missing += [f"seconds.{k}" for k in REQUIRED_SECONDS + (REQUIRED_SECONDS_V2 if v2 else ()) if k not in sec]
            if v2 and isinstance(r.get("wall"), dict):
                missing += [f"wall.{k}" for k in WALL if k not in r["wall"]]
            samples += len(sec.get("samples", ())) + len(sec.get("audit", ()))
        if missing:
            problems.append(f"results[{i}]: missing {', '.join(missing)}")
    if samples > MAX_SAMPLES:
        problems.append(f"{samples:,} repetitions in all, above the cap of {MAX_SAMPLES:,} (a full run holds about 9,000)")
    return problems


def validate(doc) -> list[str]:
    """Every reason ``doc`` is not a usable ``techday.bench/1`` document (empty when it is): the
    allow-list, then the figures against their own counts and times, then against the file's limits."""
    problems = structure(doc)
    if problems:
        return problems
    if not re.fullmatch(r"[0-9a-f]{8,64}", doc["run_id"]):
        problems.append(f"run_id {short(doc['run_id'])} is not a hex id")
    if doc["tier"] == "gpu" and not isinstance(doc["environment"].get("gpu"), dict):
        problems.append("tier 'gpu' but the environment names no GPU")
    if doc["tier"] == "cpu" and doc["environment"].get("gpu") is not None:
        problems.append("tier 'cpu' but the environment names a GPU")
    cpus = doc["environment"].get("cpu_count")
    if doc["tier"] == "cpu" and not (isinstance(cpus, int) and cpus > 0):
        # The CPU ceilings are counted per CPU: without a count, only the flat ones applied.
        problems.append(f"environment.cpu_count is {'missing' if cpus is None else short(cpus)}: a CPU-tier run "
                        "states its positive number of CPUs")
    if not isinstance(doc["started"], str) or not _iso_time(doc["started"]):
        problems.append(f"started {short(doc['started'])} is not an ISO 8601 time")
    limits = doc["limits"]
    for i, r in enumerate(doc["results"]):
        if r.get("status") != "ok":
            continue
        where = f"results[{i}] ({r['family']}.{r['kernel']} {r['impl']})"
        sec = r["seconds"]
        if not all(_num(sec[k]) and sec[k] > 0 for k in ("median", "min", "max")):
            problems.append(f"{where}: seconds are not all positive numbers")
            continue
        if not sec["min"] <= sec["median"] <= sec["max"]:
            problems.append(f"{where}: seconds min {sec['min']:.4g} <= median {sec['median']:.4g} <= max "
                            f"{sec['max']:.4g} does not hold")
        if sec["reps"] < 1:
            problems.append(f"{where}: {sec['reps']} repetitions")
        value = r["value"]
        if not _num(value) or value <= 0:
            problems.append(f"{where}: value {short(value)} is not a positive number")
            continue
        median = sec["median"]
        # The figure must follow from the counts and the time (formula beside the kernel).
        amount = {"gbs": r["bytes"], "gflops": r["flops"]}.get(r["metric"])
        implied = amount / median / 1e9 if amount is not None else median * 1e6
        if abs(implied / value - 1) > 0.01:
            problems.append(f"{where}: {r['metric']} {value:.4g} does not follow from the counts and the median "
                            f"time ({implied:.4g})")
        # Against the device's own limit, as the file states it (GPU figures only).
        key = r.get("limit_key")
        intensity = r.get("intensity") if _num(r.get("intensity")) else None
        limit = limit_for(limits, key, intensity) if isinstance(key, str) else None
        on_gpu = doc["tier"] == "gpu" and r.get("device") == "gpu" and r["metric"] != "us"
        if on_gpu and _num(limit) and limit > 0 and value > MAX_FRACTION * limit:
            problems.append(f"{where}: {value:.4g} is {value / limit:.0%} of the device's {key} limit "
                            f"{limit:.4g}, above {MAX_FRACTION:.0%}")
    published = limits.get("published") if isinstance(limits.get("published"), dict) else None
    if doc["tier"] == "gpu" and published:
        for key in ("dram_gbs", "fp32_gflops"):
            mine, theirs = limits.get(key), published.get(key)
            if _num(mine) and _num(theirs) and theirs > 0 and mine > 1.10 * theirs:
                problems.append(f"limits: {key} {mine:.4g} is above the published {published.get('name')} figure "
                                f"{theirs:.4g} by more than 10 %")
    if doc["schema"] == SCHEMA and not problems:
        problems += contract(doc)
    return problems


def labels(doc: dict) -> list[str]:
    """Labels other than those the harness writes for the run's tier and device
    (:func:`techday.tier.figure_label`): a CPU-tier run labelled ``GPU (NVIDIA H200)``, or a CPU figure
    labelled ``GPU``, presents CPU figures as GPU figures wherever the file is shown. Version 1 (the
    kit's own older runs) wrote another CPU wording; it must still say it is not a GPU figure."""
    from techday.tier import figure_label

    env, tier = doc["environment"], doc["tier"]
    gpu = env.get("gpu") if isinstance(env.get("gpu"), dict) else None
    label = doc.get("label")
    problems = []
    if tier == "gpu" and gpu is not None:
        want = figure_label(gpu["name"])
    elif doc["schema"] == SCHEMA:
        want = figure_label(None, f"CPU: {env.get('cpu')}, {env.get('cpu_count')} cores")
    else:
        want = None
    if label is None and doc["schema"] == LEGACY:
        pass
    elif want is not None and label != want:
        problems.append(f"label {short(label, 60)} is not the one the harness writes for this {tier.upper()}-tier run "
                        f"({short(want, 60)})")
    elif want is None and ("not a GPU figure" not in label or label.startswith("GPU")):
        problems.append(f"label {short(label, 60)} is not the one the harness writes for this CPU-tier run: it does "
                        "not say it is not a GPU figure")
    for i, r in enumerate(doc["results"]):
        if r.get("status") == "ok" and "label" in r:
            should = "GPU" if tier == "gpu" and r.get("device") == "gpu" else "CPU"
            if r["label"] != should:
                problems.append(f"results[{i}] ({r['family']}.{r['kernel']} {r['impl']}): label {short(r['label'])}, "
                                f"but the harness labels a {r.get('device')} figure of a {tier}-tier run {should!r}")
    return problems[:5]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def contract(doc: dict) -> list[str]:
    """What a version-2 file holds because the harness wrote it (see the module docstring): each timed
    figure's summary is its samples', its repetitions and calls are ones the harness takes, its audit
    repetitions are as fast as its timed ones, its repetitions fit in its own host time and the
    figures' host times in the run's, and the run started no earlier than version 2 existed. Each is a
    way a figure written by hand, or edited after the run, gives itself away; none tells a careful
    invention from a measurement."""
    import statistics

    from techday.measure import relative_spread

    problems: list[str] = []
    started = doc.get("started")
    if isinstance(started, str) and _iso_time(started) and started[:10] < SCHEMA_SINCE:
        problems.append(f"started {short(started)}, before {SCHEMA} existed ({SCHEMA_SINCE}): no harness wrote it then")
    hosts = 0.0
    lists: dict[tuple, str] = {}
    for i, r in enumerate(doc["results"]):
        if r.get("status") != "ok":
            continue
        where = f"results[{i}] ({r['family']}.{r['kernel']} {r['impl']})"
        sec, wall = r["seconds"], r["wall"]
        xs, audit = sec["samples"], sec["audit"]
        if not xs or min(xs) <= 0 or (audit and min(audit) <= 0):  # numbers already (structure)
            problems.append(f"{where}: a repetition that is not a positive number of seconds")
            continue
        if len(xs) != sec["reps"]:
            problems.append(f"{where}: {sec['reps']} repetitions stated, {len(xs)} samples recorded")
            continue
        hi = DEVICE_MAX_REPS if sec["clock"] == "cuda-event" else HOST_MAX_REPS
        if not MIN_REPS_TIMED <= len(xs) <= hi:
            problems.append(f"{where}: {len(xs)} timed repetitions; the harness takes {MIN_REPS_TIMED} to {hi} with "
                            f"{sec['clock']}")
            continue
        med, spread = statistics.median(xs), relative_spread(xs)
        if not (_same(sec["median"], med) and _same(sec["min"], min(xs)) and _same(sec["max"], max(xs))
                and abs(sec["spread"] - spread) <= 1e-6 * max(1.0, spread)):
            problems.append(f"{where}: the summary (median {sec['median']:.6g}, fastest {sec['min']:.6g}, slowest "
                            f"{sec['max']:.6g}, spread {sec['spread']:.4g}) is not that of its {len(xs)} samples "
                            f"({med:.6g}, {min(xs):.6g}, {max(xs):.6g}, {spread:.4g})")
            continue
        if sec["clock"] == "perf_counter" and len(set(xs)) < len(xs) / 2:
            # perf_counter reads nanoseconds: honest repetitions of a kernel almost never agree to the last
            # digit. CUDA events are quantized (about 32 ns on an H200): equal times there are expected.
            problems.append(f"{where}: only {len(set(xs))} distinct values among {len(xs)} perf_counter repetitions: "
                            "timings agree to the last digit only when they were written, not measured")
        key = tuple(xs)
        if key in lists:
            problems.append(f"{where}: the same {len(xs)} repetitions, in the same order, as {lists[key]}")
        lists.setdefault(key, where)
        calls = sec["calls"]
        most = MAX_WARM_CALLS if sec["clock"] == "cuda-event" else 1
        if not 1 <= calls <= most:
            problems.append(f"{where}: {calls} back-to-back calls per repetition; the harness makes 1"
                            + (f" to {most}" if most > 1 else "") + f" with {sec['clock']}")
        if len(audit) != AUDIT_REPS:
            problems.append(f"{where}: {len(audit)} audit repetitions; the harness takes {AUDIT_REPS}")
        elif min(audit) > AUDIT_FACTOR * med:
            problems.append(f"{where}: its fastest audit repetition (outputs poisoned before it) took "
                            f"{min(audit) / med:.1f} times its timed median: the harness says such a figure is wrong")
        # Host time: each repetition's calls ran inside the figure's timing (CUDA events time a span the
        # host waited through). Values in the file are rounded to the millisecond.
        timed = (sum(xs) + sum(audit)) * calls
        if timed > 1.01 * wall["timing"] + 0.002:
            problems.append(f"{where}: its repetitions add up to {timed:.4g} s, more than the {wall['timing']:.4g} s of "
                            "host time it records for its timing")
        if wall["setup"] + wall["check"] + wall["timing"] > wall["total"] + 0.004:
            problems.append(f"{where}: its set-up, checks and timing take longer than its total host time")
        hosts += wall["total"]
        if len(problems) > 20:
            break
    if isinstance(doc.get("seconds"), (int, float)) and hosts > 1.01 * doc["seconds"] + 0.01:
        problems.append(f"the figures' host times add up to {hosts:.4g} s, more than the run's own {doc['seconds']:.4g} s")
    return problems
