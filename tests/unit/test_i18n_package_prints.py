"""English that the ``techday`` package shows inside a trainee's notebook goes through ``msg()``, like
a lab's own (labs/README.md, "Languages"): the tier banner, a timing's line, a table or plot a lab
displays, the reason a helper a lab calls fails. Otherwise the Korean notebook prints English.

Which modules: those a lab imports (read from the labs' ``import`` lines, so a module a lab starts to
use is checked from then on), and the modules whose text those show (:data:`SHOWN_THROUGH`). What is
shown: the arguments of ``print``, ``warnings.warn`` and ``display``, an exception raised or an
assert's message, the value a ``__str__`` / ``__repr__`` / ``_repr_*_`` returns, the text of a plot
(titles, axis labels, legend labels, ``ax.text``), and every string in a function that builds a
display text (:data:`DISPLAY_FUNCTIONS`). A string there with English prose in it (two words, or a
word of four letters or more beside other text) outside a ``msg()`` call fails, naming file and line.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

PACKAGE = ROOT / "techday"
LABS = sorted(p for p in (ROOT / "labs").glob("*/*.py") if p.stem == p.parent.name)

# Text shown through a lab-facing module: techday.setup prints tier.banner; labtools returns
# measure.Timing, whose __str__ a lab prints.
SHOWN_THROUGH = {"techday/tier.py", "techday/measure.py", "techday/lab.py"}
# Functions that build a text a lab prints (every string in them is checked).
DISPLAY_FUNCTIONS = {"banner", "table", "_caption", "roofline_png", "shown_label", "describe", "races",
                     "unsynchronised_reads", "summary",
                     "find_ptxas",        # its "how found" or "why missing", which lab 04 prints
                     "backbone_record"}   # a shipped checkpoint's record, which labs 12 and 17 show
# Out of scope although a lab imports them: the translation machinery itself.
NOT_SHOWN = {"techday/i18n.py"}

SHOWN_CALLS = {"print", "warn", "display", "set_title", "set_xlabel", "set_ylabel", "suptitle", "text"}
SHOWN_KEYWORDS = {"label", "title", "caption"}
SHOWN_METHODS = {"__str__", "__repr__", "_repr_html_", "_repr_markdown_", "_repr_pretty_"}

PROSE = re.compile(r"[A-Za-z]{3,}[ :]+[A-Za-z]{2,}")
WORD = re.compile(r"(?<![A-Za-z0-9_.\-/])[A-Za-z][a-z]{3,}(?![A-Za-z0-9_(.\-/])")

# Strings the check finds that a trainee does not read in a lab: (file, literal) -> why. Each entry
# must still occur (a stale entry fails), so the list cannot grow silently.
ALLOWED: dict[tuple[str, str], str] = {
    # Validation of the lab author's own arguments and tables (a trainee never passes these).
    **{("techday/assessment.py", s): "the assessment's limits table, read when the lab is built" for s in (
        "a bandwidth must be positive, not ", "; give its memory bandwidth for the fallback rule", " must be ",
        " is not in ",
        ": needs a [rule] table and a non-empty [gpus] table",
        ": rule.shape must be [rows, cols] of positive integers, not ",
        ' must be a table such as { limit_ms = 1.5, source = "computed" }', ".source must be one of ",
        ": a computed row states the bandwidth_gbs it was computed from", ', source = "computed" }')},
    **{("techday/dltrain.py", s): "course/syllabus.toml, checked by the build and the instructor's tools" for s in (
        "course/syllabus.toml has no track ", "] pass_rule names no assessment lab",
        "] assessment_bar needs ", "] assessment_bar: need 0 < ",
        "] assessment_bar: transfer_labels_per_class must be a positive whole number, got ")},
    **{("techday/dl.py", s): "synthetic_sequences' arguments, fixed by the lab" for s in (
        ", length=", ", symbols=", ": need n >= 0, length >= 1, symbols >= 2")},
    **{("techday/parts.py", s): "the parts generator's arguments, fixed by the lab" for s in (
        "n must be >= 0, not ", "size must be at least 16 pixels, not ", "product must be one of ")},
    **{("techday/imageref.py", s): "the reference pipeline's arguments, fixed by the lab" for s in (
        "a blur kernel has an odd size, not ", "unknown sample ", ": choose one of ",
        "() is not a grey uint8 picture", "need a 2-D image and an odd square kernel, got ",
        "blur weights must be non-negative with a positive sum", "need 256 non-negative counts, not all zero")},
    ("techday/gpuspecs.py", "no GPU named "): "gpuspecs.by_name with a name the lab spells",
    ("techday/gpuspecs.py", " in techday.gpuspecs; known: "): "gpuspecs.by_name with a name the lab spells",
    ("techday/simtrace.py", "not a simulator device array: "): "an internal check of the tracer's arguments",
    ("techday/simtrace.py", "Array alignment is not supported in cudasim"):
        "the simulator's own message, repeated word for word where the tracer stands in for it",
    ("techday/simtools.py", "Array alignment is not supported in cudasim"):
        "the simulator's own message, repeated word for word where the tracer stands in for it",
    ("techday/tier.py", "Tech Day GPU Lab"): "the course's name",
    ("techday/assessment.py", "speed bar "): "the speed record's bar: lab 07's records read the same in every "
                                             "language, like figure_label",
    ("techday/tier.py", "TIER: GPU  "): "the tier's marker, the same in every language: the runner, the grader "
                                         "and the tests look for it in a lab's first output",
    ("techday/tier.py", "TIER: CPU  "): "the tier's marker, the same in every language: the runner, the grader "
                                         "and the tests look for it in a lab's first output",
    # Install problems of the machine, not of the trainee's code: the instructor reads and fixes them.
    ("techday/cudasrc.py", "cuda.bindings is not installed (pip install numba-cuda)"): "an install problem",
    ("techday/cudasrc.py", "cuda.core is not installed (pip install numba-cuda)"): "an install problem",
    ("techday/cudasrc.py", 'the NVRTC library was not found: pip install -e ".[test]" (nvidia-cuda-nvrtc-cu12) ('):
        "an install problem",
    ("techday/cudasrc.py", 'the NVRTC library was not found: pip install -e ".[test]" ('): "an install problem",
    ("techday/cudasrc.py", "NVRTC did not start: "): "an install problem",
    ("techday/cudasrc.py", "compilation log:"): "the separator the code looks for in NVRTC's own log",
}


def _is_msg(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
    return name == "msg"


def _literals(node: ast.AST, whole_body: bool = False):
    """String constants under ``node`` that no ``msg()`` translates (a msg's keyword values are read:
    they are shown as they stand). In a display function's body (``whole_body``), a dictionary's key,
    an index and a keyword argument that is not text (``loc="lower right"``, ``color=``) are settings,
    not text."""
    if _is_msg(node):
        for arg in node.args[2:]:
            yield from _literals(arg, whole_body)
        for kw in node.keywords:
            yield from _literals(kw.value, whole_body)
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
        return
    if whole_body:
        if isinstance(node, ast.Subscript):
            yield from _literals(node.value, whole_body)
            return
        if isinstance(node, ast.Call):
            yield from _literals(node.func, whole_body)
            for arg in node.args:
                yield from _literals(arg, whole_body)
            for kw in node.keywords:
                if kw.arg in SHOWN_KEYWORDS or kw.arg is None:
                    yield from _literals(kw.value, whole_body)
            return
        if isinstance(node, ast.Dict):
            for value in node.values:
                yield from _literals(value, whole_body)
            return
        if isinstance(node, ast.Compare):  # r["status"] == "ok": a comparison is not shown
            return
    for child in ast.iter_child_nodes(node):
        yield from _literals(child, whole_body)


def is_prose(text: str) -> bool:
    return bool(PROSE.search(text) or (re.search(r"\s", text) and WORD.search(text)))


def shown_english(source_text: str) -> list[tuple[int, str]]:
    """(line, literal) for each English phrase the module shows outside ``msg()``."""
    tree = ast.parse(source_text)
    roots: list[ast.AST] = []
    bodies: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in SHOWN_CALLS:
                roots += node.args
            roots += [kw.value for kw in node.keywords if kw.arg in SHOWN_KEYWORDS]
        elif isinstance(node, ast.Raise) and node.exc is not None:
            roots.append(node.exc)
        elif isinstance(node, ast.Assert) and node.msg is not None:
            roots.append(node.msg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name in DISPLAY_FUNCTIONS:
                bodies += node.body[1:] if ast.get_docstring(node) else node.body
            elif node.name in SHOWN_METHODS:
                roots += [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
    found = set()
    for root, whole_body in [(r, False) for r in roots] + [(b, True) for b in bodies]:
        for lit in _literals(root, whole_body):
            if is_prose(lit.value):
                found.add((lit.lineno, lit.value))
    return sorted(found)


def _module_path(dotted: str):
    """``techday.a.b`` -> the file, or None."""
    rel = dotted.split(".")[1:]
    if not rel:
        return PACKAGE / "__init__.py"
    for cand in (PACKAGE.joinpath(*rel).with_suffix(".py"), PACKAGE.joinpath(*rel, "__init__.py")):
        if cand.is_file():
            return cand
    return None


def lab_facing_modules() -> list[str]:
    """The package's modules a lab imports, with what ``techday/__init__.py`` imports and
    :data:`SHOWN_THROUGH`; paths relative to the repository."""
    found = set(SHOWN_THROUGH)
    for lab in LABS:
        for node in ast.walk(ast.parse(lab.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "techday":
                names.append(node.module)
                names += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names += [a.name for a in node.names if a.name.split(".")[0] == "techday"]
            for name in names:
                path = _module_path(name)
                if path is not None:
                    found.add(path.relative_to(ROOT).as_posix())
    return sorted(found - NOT_SHOWN)


def _hits():
    out = []
    for rel in lab_facing_modules():
        out += [(rel, line, text) for line, text in shown_english((ROOT / rel).read_text(encoding="utf-8"))]
    return out


def test_the_package_shows_english_to_a_trainee_only_through_msg():
    hits = [(rel, line, text) for rel, line, text in _hits() if (rel, text) not in ALLOWED]
    assert not hits, ("English the package shows in a trainee's notebook outside msg() (wrap it in "
                      "msg(\"techday.<name>\", \"English {x}\", x=...) and add [messages.<name>] to "
                      "techday/data/messages.ko.toml):\n"
                      + "\n".join(f"  {rel}:{line}: {text!r}" for rel, line, text in hits))


def test_every_allowed_package_literal_still_occurs():
    present = {(rel, text) for rel, _, text in _hits()}
    stale = sorted(set(ALLOWED) - present)
    assert not stale, f"allow-list entries no longer shown by their module (remove them): {stale}"


def test_the_modules_checked_include_what_labs_use():
    """The wrong answer: a module list written by hand that misses one a lab imports (or the banner's)."""
    modules = lab_facing_modules()
    for rel in ("techday/lab.py", "techday/tier.py", "techday/measure.py", "techday/labtools.py",
                "techday/bench/report.py", "techday/xp.py", "techday/dltrain.py", "techday/ptxreport.py"):
        assert rel in modules, rel


def test_the_check_catches_shown_english_and_passes_it_inside_msg():
    """The wrong answers (each from the package before this check): a timing's ``__str__`` in English,
    a banner line built in a list, a tier reason returned into the banner, an error a lab's trainee
    meets, a plot's legend label and a table column; and the right ones."""
    wrong = '''
class Timing:
    def __str__(self):
        return f"{self.what}: median {ms:.3f} ms over {n} runs [{self.label}]"
def banner(info):
    lines = ["TIER: CPU  (Numba CUDA simulator for kernels)", f"why: {info.reason}"]
    return "\\n".join(lines)
def f(x):
    raise TypeError(f"pass a stream made by cuda.stream() in this function, not {x!r}")
ax.plot([], [], label=f"{name} (CPU figures, no roof)")
def table(doc):
    for col in ("kernel [impl]", "median ms"):
        t.add_column(col)
'''
    assert sorted({line for line, _ in shown_english(wrong)}) == [4, 6, 9, 10, 12]
    right = '''
class Timing:
    def __str__(self):
        return msg("techday.timing", "{what}: median {ms:.3f} ms over {runs} runs", what=w, ms=m, runs=n)
def banner(info):
    lines = ["=" * 72, msg("techday.banner_why", "why: {reason}", reason=info.reason)]
    return "\\n".join(lines)
raise TierError(msg("techday.unknown_tier", "unknown tier {tier!r}", tier=t))
ax.plot([], [], label=msg("techday.roof_cpu_none", "{name} (CPU figures, no roof)", name=name), ls="")
raise KeyError(name)
print(f"{name:16s} {value:8.1f} GB/s")
'''
    assert shown_english(right) == []


def test_a_korean_run_shows_the_banner_and_a_timing_in_korean(monkeypatch):
    """The wrong answers: the banner and a timing's line in English in the Korean notebook (before
    this check), a tier marker translated away (the runner and the grader look for "TIER: CPU"),
    and a record's label translated (records read the same in every language)."""
    from techday.i18n import _HANGUL
    from techday.measure import Timing
    from techday.tier import TierInfo, banner, detect, figure_label

    monkeypatch.setenv("TECHDAY_LANG", "ko")
    info = detect("cpu")
    text = banner(info, scale="ci", title="00")
    assert "TIER: CPU" in text
    for line in text.splitlines()[2:]:  # below the rule and the course's name
        if not line.startswith("="):
            assert _HANGUL.search(line), line
    assert "'cpu' 티어" in info.reason
    label = figure_label(None)
    assert label == "CPU/simulator (not a GPU figure)"
    shown = str(Timing("copy", [0.001, 0.002, 0.003], label))
    assert "중앙값" in shown and "[CPU/시뮬레이터 (GPU 측정값 아님)]" in shown and "not a GPU figure" not in shown, shown
    monkeypatch.setenv("TECHDAY_LANG", "en")
    assert str(Timing("copy", [0.002], label)) == \
        "copy: median 2.000 ms over 1 runs (spread 0%) [CPU/simulator (not a GPU figure)]"
    assert "why: tier 'cpu' was requested" in banner(detect("cpu"))
    assert banner(TierInfo(tier="cpu", requested="cpu", reason="r", simulator=True)).count("TIER: CPU") == 1
