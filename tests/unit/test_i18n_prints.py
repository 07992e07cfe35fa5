"""Printed English reaches a trainee only through ``msg()`` (labs/README.md, "Languages"): a lab's
``print(...)`` may show numbers, names and code, but a phrase of English in it must be the English
default of a message, so that the Korean run prints the Korean one. Checked for every lab, translated
or not, since a printed phrase written in English only is a gap in every other language.

What a lab shows is more than its ``print`` calls: the ``what=`` and ``label=`` of a timing (printed
by ``Timing.__str__``), the ``title=`` of ``techday.setup`` (the banner), a plot's title, axis labels
and legend labels, and the rows of a table that a loop prints (``for name, gbs in [("device memory",
...)]: print(f"{name} ...")``: the names a printed value is bound to are read too). A phrase is two
English words, or a word of four letters or more in a text with spaces (``"Moving 1 GiB ("``,
``" GB/s theoretical"``); a bare name (``"numpy"``, ``"camera"``) is not prose."""

from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import ROOT

LABS = sorted(p for p in (ROOT / "labs").glob("*/*.py") if p.stem == p.parent.name)

# Two English words: a word of three letters or more, then spaces or a colon, then another word
# (``"first call: "``, ``" | kernels run "``). A bare name, a unit or a format spec is not prose.
PROSE = re.compile(r"[A-Za-z]{3,}[ :]+[A-Za-z]{2,}")
# One English word of four letters or more (not part of a name, a path or a call), in a text that has
# spaces: ``" GB/s theoretical"``, ``"Moving 1 GiB ("``.
WORD = re.compile(r"(?<![A-Za-z0-9_.\-/])[A-Za-z][a-z]{3,}(?![A-Za-z0-9_(.\-/])")

# Calls whose arguments a trainee reads, and keywords whose values a trainee reads in any call.
SHOWN_CALLS = {"print", "set_title", "set_xlabel", "set_ylabel", "suptitle", "title", "xlabel", "ylabel"}
SHOWN_KEYWORDS = {"what", "label", "title"}

# Labs whose shown English is not all in msg() yet: lab -> how many literals are left. The count must
# match exactly, so a lab that gains a phrase fails, and one that loses its last must leave the list.
PENDING: dict[str, int] = {}

# Literals that match PROSE but are not prose a trainee reads in a language: (lab, literal) -> why.
# Each entry must still occur (a stale entry fails), so the list cannot grow silently.
ALLOWED: dict[tuple[str, str], str] = {
    ("01-numba-first-steps", "@vectorize target='cpu'"): "code: the decorator as the lab writes it",
    ("02-kernels-and-threads", "hidden: n="): "a hidden test's name for its case: hidden tests are never shown",
    ("04-memory-subsystem", "ptxas: "): "the tool's name before its path",
    ("05-cupy-interop", 'extern "C"'): "CUDA C source, printed as code",
    ("06-streams-concurrency", "same stream"): "a mode the lab's function takes, passed, not shown",
    ("13-dl-training-fast", "fake "): "a test's record label, compared, not shown",
}


def _is_msg(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
    return name == "msg"


def _literals(node: ast.AST):
    """String constants under ``node`` (f-string parts included) that a ``msg()`` call does not
    translate: its key and English default are skipped, its keyword values are still read (a value
    such as ``gpu="none"`` is printed as it stands, in every language)."""
    if _is_msg(node):
        for arg in node.args[2:]:
            yield from _literals(arg)
        for kw in node.keywords:
            yield from _literals(kw.value)
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
        return
    for child in ast.iter_child_nodes(node):
        yield from _literals(child)


# Names that read the same in every language (packages), not English words.
NAMES = {"numba", "numpy", "cupy", "torch", "python", "pytorch", "matplotlib", "torchvision", "onnx", "onnxruntime"}


def is_prose(text: str) -> bool:
    words = [w for w in WORD.findall(text) if w.lower() not in NAMES]
    return bool(PROSE.search(text) or (re.search(r"\s", text) and words))


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _shown_names(node: ast.AST) -> set[str]:
    """The names whose values an expression shows: not an index, not a call's arguments (a call's
    result is not its input: ``compile_ptx(SOURCE)``), but a method's receiver (``rows.items()``)."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Subscript):
        return _shown_names(node.value)
    if isinstance(node, ast.Call):
        if _is_msg(node):
            return set().union(*(_shown_names(kw.value) for kw in node.keywords))
        return _shown_names(node.func.value) if isinstance(node.func, ast.Attribute) else set()
    return set().union(set(), *(_shown_names(child) for child in ast.iter_child_nodes(node)))


def _shown_values(node: ast.AST):
    """What a shown expression may print of its parts: an index (``row["name"]``) and a call's
    arguments other than text (``f(x, "cuda")``) are not shown, a call's text arguments are."""
    if isinstance(node, ast.Subscript):
        yield from _shown_values(node.value)
        return
    if isinstance(node, ast.Call) and not _is_msg(node):
        for arg in node.args:
            if isinstance(arg, (ast.Constant, ast.JoinedStr)):
                yield arg
        return
    if isinstance(node, (ast.Constant, ast.JoinedStr)) or _is_msg(node):
        yield node
        return
    for child in ast.iter_child_nodes(node):
        yield from _shown_values(child)


def raw_prints(source_text: str) -> list[tuple[int, str]]:
    """(line, literal) for each English phrase a lab shows outside ``msg()``: in a ``print(...)`` or a
    plot's text, in a ``what=``, ``label=`` or ``title=``, or in what a name shown there was bound to
    (an assignment or a ``for`` loop, followed three steps back)."""
    tree = ast.parse(source_text)
    bound: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.comprehension)):
            for name in _names(node.target):
                bound.setdefault(name, []).append(node.iter)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in _names(target):
                    bound.setdefault(name, []).append(node.value)
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _is_msg(node):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        roots = list(node.args) if name in SHOWN_CALLS else []
        roots += [kw.value for kw in node.keywords if kw.arg in SHOWN_KEYWORDS]
        todo, seen = list(roots), set()
        for _ in range(3):
            for expr in list(todo):
                for n in _shown_names(expr) - seen:
                    seen.add(n)
                    todo += bound.get(n, [])
        for expr in todo:
            for part in _shown_values(expr):
                found |= {(lit.lineno, lit.value) for lit in _literals(part) if is_prose(lit.value)}
    return sorted(found)


@pytest.mark.parametrize("source", LABS, ids=lambda p: p.stem)
def test_a_lab_prints_english_phrases_only_through_msg(source):
    lab = source.stem
    hits = [(line, text) for line, text in raw_prints(source.read_text(encoding="utf-8"))
            if (lab, text) not in ALLOWED]
    if lab in PENDING:
        assert hits and len(hits) == PENDING[lab], (
            f"{lab}: {len(hits)} shown English literal(s) outside msg(), PENDING says {PENDING[lab]}: "
            "set the count (remove the entry at 0)\n" + "\n".join(f"  {source.name}:{line}: {text!r}" for line, text in hits))
        return
    assert not hits, (f"{lab}: English printed outside msg() (wrap it in msg(\"NN.key\", \"English {{x}}\", x=...) "
                      f"and add [messages.key] to its .ko.toml):\n"
                      + "\n".join(f"  {source.name}:{line}: {text!r}" for line, text in hits))


def test_every_allowed_literal_still_occurs():
    present = {(p.stem, text) for p in LABS for _, text in raw_prints(p.read_text(encoding="utf-8"))}
    stale = sorted(set(ALLOWED) - present)
    assert not stale, f"allow-list entries no longer printed by their lab (remove them): {stale}"


def test_the_check_catches_english_outside_msg_and_passes_it_inside():
    """The wrong answers: a printed f-string phrase, a phrase joined onto one (the old setup banner),
    a phrase in a conditional, and an English value passed into a message; and the right ones."""
    wrong = '''
print(f"first call  (compile + run): {t:9.1f} ms")
print(f"numba {v} | kernels run " + ("on the GPU" if gpu else "in the CUDA simulator (CPU tier)"))
print("class counts:", counts)
print(msg("00.gpu", "GPU: {gpu}", gpu=name if name else "none (CPU tier)"))
'''
    assert [line for line, _ in raw_prints(wrong)] == [2, 3, 3, 3, 4, 5]


def test_the_check_catches_what_a_lab_shows_besides_print():
    """The wrong answers, from lab 00 before this check: a single English word beside numbers (the
    bandwidth line), a table's heading and the row names a loop prints ("Moving 1 GiB"), a timing's
    ``what=`` and ``label=``, a plot's title and axis label, and the banner's title; and the right ones
    (a name, a unit, a data set's name, an index). A lone word (``label="roofline"``) reads like a
    name (``"camera"``) and is not caught: review catches it."""
    wrong = '''
print(f"{dev.name}: {mhz:.0f} MHz x {bits} bit / 8 = {gbs:.0f} GB/s theoretical")
print(f"Moving 1 GiB ({GiB:,} bytes):")
for path, gbs in [("PCIe 4.0 x16 (~25 GB/s)", 25), (f"device memory, {dev.name}", bandwidth_gbs)]:
    print(f"  {path:52s} {copy_time_ms(GiB, gbs):8.2f} ms")
t = time_cpu(np.copyto, dst, src, what=f"host memcpy of {mb:.0f} MB", label="CPU (host RAM, not a GPU figure)")
ax.set_title(f"FP32 roofline, {dev.name} (theoretical)")
ax.set_xlabel("arithmetic intensity (FLOP/byte)")
lab = techday.setup(tier=tier, scale=scale, title="00 GPU and environment tour")
'''
    assert sorted({line for line, _ in raw_prints(wrong)}) == [2, 3, 4, 6, 7, 8, 9]
    right = '''
print(msg("01.first_call", "first call  (compile + run): {ms:9.1f} ms", ms=t))
print(msg("00.gpu", "GPU: {gpu}", gpu=name if name else msg("00.no_gpu", "none (CPU tier)")))
print(f"{name:16s} {value:8.1f} GB/s", "ms")
print(t)
for package in ("numpy", "numba", "numba-cuda"):
    print(f"  {package:14s} {version(package)}")
for name in ("camera", "coins"):
    print(name, sample(name).shape)
for path, gbs in [("PCIe 4.0 x16 (~25 GB/s)", 25), (msg("00.dm", "device memory, {n}", n=dev.name), bw)]:
    print(f"  {path:52s} {gbs:8.2f} ms")
ax.plot(x, y, label=row["long name"])
lab = techday.setup(tier=tier, scale=scale, title=msg("00.title", "00 GPU and environment tour"))
'''
    assert raw_prints(right) == []


def unshown_labels(source_text: str) -> list[int]:
    """Lines where a lab passes ``lab.timing_label()`` into a ``msg()`` it prints without ``shown_label``: the
    record's English label ("CPU/simulator (not a GPU figure)") inside the trainee's language."""
    lines = []
    for node in ast.walk(ast.parse(source_text)):
        if not _is_msg(node):
            continue
        for kw in node.keywords:
            shown = {id(c) for s in ast.walk(kw.value) if isinstance(s, ast.Call)
                     and getattr(s.func, "id", getattr(s.func, "attr", None)) == "shown_label" for c in ast.walk(s)}
            lines += [c.lineno for c in ast.walk(kw.value) if isinstance(c, ast.Call) and id(c) not in shown
                      and getattr(c.func, "attr", None) == "timing_label"]
    return sorted(lines)


@pytest.mark.parametrize("source", LABS, ids=lambda p: p.stem)
def test_a_lab_prints_a_timing_label_in_the_runs_language(source):
    """Wrong answer caught: lab 12's "(둘 합쳐 20.3 s [CPU/simulator (not a GPU figure)])" and the same in labs 02, 10
    and 11 on the CPU tier (before this test): ``lab.timing_label()`` is the English a record keeps; printed, it goes
    through ``techday.tier.shown_label``."""
    lines = unshown_labels(source.read_text(encoding="utf-8"))
    assert not lines, f"{source.name}: lab.timing_label() printed without shown_label(): lines {lines}"


def test_the_label_check_catches_a_raw_label_and_passes_a_shown_one():
    wrong = 'print(msg("12.x", "{s} s [{label}]", s=1, label=lab.timing_label()))\n'
    right = 'print(msg("12.x", "{s} s [{label}]", s=1, label=shown_label(lab.timing_label())))\n'
    assert unshown_labels(wrong) == [1] and unshown_labels(right) == []
