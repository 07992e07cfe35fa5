"""Printed English reaches a trainee only through ``msg()`` (labs/README.md, "Languages"): a lab's
``print(...)`` may show numbers, names and code, but a phrase of English in it must be the English
default of a message, so that the Korean run prints the Korean one. Checked for every lab, translated
or not, since a printed phrase written in English only is a gap in every other language."""

from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import ROOT

LABS = sorted(p for p in (ROOT / "labs").glob("*/*.py") if p.stem == p.parent.name)

# Two English words: a word of three letters or more, then spaces or a colon, then another word
# (``"first call: "``, ``" | kernels run "``). A bare name, a unit or a format spec is not prose.
PROSE = re.compile(r"[A-Za-z]{3,}[ :]+[A-Za-z]{2,}")

# Literals that match PROSE but are not prose a trainee reads in a language: (lab, literal) -> why.
# Each entry must still occur (a stale entry fails), so the list cannot grow silently.
ALLOWED: dict[tuple[str, str], str] = {
    # none today: every printed phrase goes through msg()
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


def raw_prints(source_text: str) -> list[tuple[int, str]]:
    """(line, literal) for each English phrase in a ``print(...)`` argument outside ``msg()``."""
    found = []
    for node in ast.walk(ast.parse(source_text)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            for arg in node.args:
                found += [(lit.lineno, lit.value) for lit in _literals(arg) if PROSE.search(lit.value)]
    return sorted(set(found))


@pytest.mark.parametrize("source", LABS, ids=lambda p: p.stem)
def test_a_lab_prints_english_phrases_only_through_msg(source):
    lab = source.stem
    hits = [(line, text) for line, text in raw_prints(source.read_text(encoding="utf-8"))
            if (lab, text) not in ALLOWED]
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
    right = '''
print(msg("01.first_call", "first call  (compile + run): {ms:9.1f} ms", ms=t))
print(msg("00.gpu", "GPU: {gpu}", gpu=name if name else msg("00.no_gpu", "none (CPU tier)")))
print(f"{name:16s} {value:8.1f} GB/s", "ms")
print(t)
'''
    assert raw_prints(right) == []
