"""Answers shared between trainees: which submissions of one lab hold the same answer text.

A trainee who copies a neighbour's passing notebook, or a leaked solution, passes every test; only a
comparison of the submissions with each other shows it. The method is MOSS's (Schleimer, Wilkerson and
Aiken, "Winnowing: local algorithms for document fingerprinting", SIGMOD 2003), on what each trainee
*added* to the released answer cells:

1. **Answer text.** Every code and markdown cell of a submission, whatever its metadata claims (a
   trainee writes it: a copy in a new cell marked with a made-up ``grade_id`` or as a test was missed),
   less the release's text (step 4); a cell is named by its ``grade_id`` only where the release has
   that cell, else :data:`OWN_CELL`. For the course's solution, its answer cells: a code cell with its
   solution markers removed (what is outside them is the release's, dropped in step 4), or, where that
   does not parse, and in markdown, only the region between ``### BEGIN SOLUTION`` and
   ``### END SOLUTION``.
2. **Canonical form.** A code cell that parses (up to :data:`AST_MAX_CHARS` characters a cell and
   :data:`MAX_TOKENS` a participant) is rewritten through :mod:`ast` before it is tokenized, undoing what
   changes the text and not the program: a builtin, or a callable ``a.b.c``, called through a name of
   one's own (``s = sum``, then ``s(...)``; ``from builtins import sum as s``) is called by its own name;
   statements that compute nothing (``pass``, a lone constant, ``print(...)``, ``x = x``, ``x += 0``,
   ``x *= 1``, ``assert True``, ``if False:`` and ``while False:`` blocks) and a literal stored into a name
   nothing in the cell reads (``dead = 0``) are dropped; so are statements whose results nothing reads
   (:func:`_drop_dead`: an assignment to local names not read before being bound again, in the cell or a
   function, that calls nothing but a few builtins that only compute; a module-level name another cell or the release reads is live);
   ``x = x + y`` is ``x += y``; ``i = a`` then
   ``while i < b: ...; i += c`` is ``for i in range(a, b, c)``, and ``range(0, n, 1)`` is ``range(n)``;
   each run of assignments and calls is put in one order that keeps every dependence between them (a
   statement that writes a name another reads or writes stays on its side), so independent statements
   swapped give the same text. The result is unparsed and tokenized. IPython magic and shell lines
   (``%timeit``, ``!ls``) are left out where the cell does not parse with them; a cell that does not
   parse without them is tokenized as written.
3. **Tokens, normalised against disguise.** Code goes through :mod:`tokenize` (a regex split where a
   trainee's cell does not tokenize). Names become one placeholder ``V``, except keywords, builtins and
   attribute names after ``.`` (``cuda.atomic.add``, ``loss.backward``: the API an answer must call,
   which renaming cannot change); so renaming variables hides nothing. String literals become one
   placeholder ``S`` (messages are rewritten as cheaply as comments); numbers keep their value, however
   written (the exercise's sizes and bounds, and what makes a line specific: ``0x2`` and ``2.00`` are
   ``2.0``, as ``2`` is). Comments, blank lines
   and indentation are dropped: rewritten comments and reformatting hide nothing, and comments are no
   reliable signal the other way (a copier rewrites them first). Each statement ends in one ``;``
   token, and statements that compute nothing (``pass``, a lone string, ``print(...)``) are dropped:
   padding a copy with them hides nothing, and honest debugging prints make no rare text. Markdown
   answers: lower-cased words, a line for a statement.
4. **Only what the trainee added.** Statements the release's same cell holds (compared normalised: a
   renamed parameter does not make the header an answer) are dropped, and so is any fingerprint of the
   release: a cell left as released, or course code pasted into an answer, shares nothing.
5. **Fingerprints.** A stable rolling hash (Karp-Rabin over ``zlib.crc32`` of each token: Python's own
   ``hash`` is salted per process) of every run of :data:`K` tokens inside one cell. All k-grams, not a
   winnowed subset: a room's answers are small (capped at :data:`MAX_TOKENS` tokens per participant) and
   every k-gram lets the shared text be counted in tokens. Fingerprints are matched across cells, so
   moving answer text to another cell, or reordering cells, hides nothing.
6. **Room frequency.** A fingerprint held by more than ``max(COMMON_FLOOR, COMMON_FRACTION * room)``
   participants (those with any answer text) is the natural way to write that line and is ignored. The
   floor of 3 keeps a ring of three trainees sharing one notebook visible in a small room. The course's
   solution counts as a participant here: where many trainees write the canonical answer honestly, its
   fingerprints become common and drop out, so writing the obvious answer is never a finding; a copy of
   the solution in a room that did not write it stays rare.
7. **Pairs.** An inverted index (fingerprint -> holders) gives, for each pair holding a rare fingerprint,
   the fingerprints they share; the tokens these cover are counted in each. Each participant's *own*
   answer text is the tokens covered by any rare fingerprint (what is not common, not released, not
   too short to fingerprint). A pair is reported when both cover at least ``min_tokens`` shared tokens
   and the shared tokens are at least ``min_fraction`` of the smaller own text: padding one copy with
   text of one's own then hides nothing. A pair under that is still reported where some answer (a
   cell) is almost wholly shared on both sides (:data:`PART_MIN_TOKENS`, :data:`PART_FRACTION`): a
   copier who copies two answers of five and writes the rest (the finding names only those cells;
   its note says "whole answers shared").
8. **Rings.** Text held by more than the common rule allows and by at most :data:`RING_MAX`
   participants, grouped by exactly who holds it, is a ring where it is at least
   :data:`RING_MIN_TOKENS` tokens and :data:`RING_FRACTION` of each one's own answer text: a leaked
   solution handed in by three trainees, four friends handing in one notebook, in a room of 20. Each
   pair of the ring not already reported is, and the note names every holder.
   Defaults and their measurement: grading/README.md.

Pure: no files, no randomness; the same input gives the same sorted list, whatever the dicts' order.

What it does not cover (measured, in grading/README.md, "Answers shared between trainees"): answers too
short to tell apart (under ``MIN_TOKENS`` shared), a copy rewritten by hand beyond the canonical form (dead
code that calls something, a branch that never runs behind a computed test, another algorithm, a loop
restructured otherwise), one short
answer copied among several, a copy of an answer most of the room wrote the same way; and which of a
pair copied. A finding is a reason for a person to look, never a verdict.
"""

from __future__ import annotations

import ast
import builtins
import copy
import io
import keyword
import re
import tokenize
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from ..course.labsrc import BEGIN_SOLUTION, END_SOLUTION, strip_solution_markers

SOLUTION = "the course's solution"
K = 10
"""Tokens per fingerprint: a normalised line is 8 to 20 tokens, so a fingerprint spans about a line;
shorter k-grams (one ``V = V [ V ]``) are common to every answer, longer ones break on each edit."""
MAX_TOKENS = 501_000
"""Tokens read per participant (the first ones, cell by cell): every notebook the checks accept is read
whole (at most 500,000 characters of cell text in 1,000 cells, ``techday.grading.checks``; a token is at
least one character, and a cell adds at most one ``;`` of its own), and a bigger one, which cannot be
graded, costs no more. 20,000 let one line of junk at the top of a gradable notebook (``_ = [0, 0,
...]``, 20 KB) hide every answer after it. Lab answers are a few hundred tokens."""
COMMON_FRACTION = 0.05
"""Share of the room above which a fingerprint is common (and never less than :data:`COMMON_FLOOR` holders)."""
COMMON_FLOOR = 3
"""Holders a fingerprint may always have and stay rare, whatever the room's size. 3, not 2: in a room
under 60 a floor of 2 dropped the text of three trainees sharing one notebook as common (the realistic
copy ring of a workshop room); 3 reports such rings in rooms of 20 to 300 (179 of 180 pairs; the one
missed fell under :data:`MIN_FRACTION`) with no honest pair reported, where 4 (which would also catch
rings of four in rooms under 80) reported an honest trainee against the course's solution in rooms of
20. Measured: grading/README.md."""
MIN_TOKENS = 40
"""Shared rare tokens below which a pair is not reported: about four normalised lines. Guards against
small answers that coincide (one short cell each, all of it "own" text). Measured: grading/README.md."""
PART_MIN_TOKENS = 40
"""Shared rare tokens an answer (a cell) must hold, on both sides, to be a finding when the notebooks'
answers as a whole are not: as :data:`MIN_TOKENS`, about four normalised lines."""
PART_FRACTION = 0.9
"""Share of a cell's own answer text that must be shared, on both sides, for that answer to be copied
whole. Honest trainees who wrote the same course variant of an answer share the runs between lines of
their own, never 90 % of it. Measured: grading/README.md."""
RING_MAX = 6
"""Most holders of one text that :func:`_rings` looks at: the room's common rule (``max(3, 5 %)``) drops
text held by four in a room under 80; a ring of up to six (a leaked solution and five copies) is looked
at in any room (from 120 trainees, the common rule allows six anyway)."""
RING_MIN_TOKENS = 80
"""Tokens of a ring's text each holder must have: twice :data:`MIN_TOKENS`, for a text held by more."""
RING_FRACTION = 0.6
"""Share of each holder's own answer text (rare in the room, and the ring's text) the ring's text must
be: as :data:`MIN_FRACTION`, for every holder."""
MIN_FRACTION = 0.6
"""Share of the smaller own answer text the shared text must reach. Guards against two long answers that
coincide here and there (the grid-stride loop, the same unusual order of two lines)."""

_BUILTIN_NAMES = frozenset(dir(builtins)) - {"True", "False", "None"}
_KEPT_NAMES = (frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))) - {"_"}
"""Names kept as written: keywords and builtins, less ``_`` (a soft keyword, and the throwaway name any
variable may be renamed to: ``for _ in ...`` renamed ``for k in ...`` broke a run)."""
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER,
            *(getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n))}
_STRINGS = {tokenize.STRING, *(getattr(tokenize, n) for n in ("FSTRING_START",) if hasattr(tokenize, n))}
_WORD_RE = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|[^\w\s]")
_MD_WORD_RE = re.compile(r"\w+")
_IDENT_RE = re.compile(r"[^\W\d]\w*")
_NO_EFFECT = {(), ("pass",), ("S",)}
_MOD = (1 << 61) - 1
_BASE = 1_000_003
_TOP = pow(_BASE, K - 1, _MOD)


@dataclass(frozen=True)
class Shared:
    """Two participants holding the same rare answer text. ``b`` is :data:`SOLUTION` for a copy of the
    course's solution; otherwise ``a < b``."""

    a: str
    b: str
    tokens: int
    fraction_a: float
    fraction_b: float
    cells: tuple[str, ...]  # of both
    cells_a: tuple[str, ...] = ()  # of ``a`` alone: what a hold line on ``a`` names (``b`` cannot change it)
    cells_b: tuple[str, ...] = ()
    why: str = ""  # "": most of both one's answer text; "part": whole answers (cells), the rest not;
    # "ring": one text held by the participants ``ring`` (more than the room's common rule allows)
    ring: tuple[str, ...] = ()

    def note(self) -> str:
        """One line for an instructor: what is shared, how much, where, and (a ring) by whom."""
        what = "whole answers shared" if self.why == "part" else "answers shared"
        held = f"; the same text held by {len(self.ring)}: {', '.join(self.ring)}" if self.ring else ""
        return (f"{what} between {self.a} and {self.b} ({self.tokens} tokens, "
                f"{round(100 * self.fraction_a)} % / {round(100 * self.fraction_b)} % of their own answer text; "
                f"cells: {', '.join(self.cells)}{held})")


@dataclass
class _Answers:
    """One participant's fingerprints: where each starts (token index) and which cell each token is in."""

    starts: dict[int, list[int]]
    cell_of: list[str]
    unit: list[int]  # which cell read (0, 1, ...) each token is in: a cell, where ``cell_of`` names several


def _source(cell: dict) -> str | None:
    """The cell's text (nbformat allows a list of lines); None for anything else."""
    src = cell.get("source")
    if isinstance(src, list) and all(isinstance(s, str) for s in src):
        return "".join(src)
    return src if isinstance(src, str) else None


OWN_CELL = "a cell of their own"
"""How a finding names a cell the trainee added (no nbgrader metadata): a copier who moves the copied
code into a new cell, and leaves the answer cell a one-line call of it, is compared there too."""


def _cells(nb: object, answers_only: bool) -> list[tuple[str, bool, str]]:
    """(grade_id, is_markdown, text) of a notebook's cells. With ``answers_only`` (the course's own
    solution notebook, whose metadata is the course's), the answer cells (``solution``) and cells with no
    ``grade_id`` (:data:`OWN_CELL`), never its locked and test cells. Without it, every code and markdown
    cell: a submission's metadata is the trainee's to write, so what is the course's text is decided by
    the release (:func:`_answers` drops it), never by what a cell claims to be. A malformed cell is
    skipped, never raised on: a submission is the trainee's file."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    out = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        meta = cell.get("metadata")
        grading = meta.get("nbgrader") if isinstance(meta, dict) else None
        grading = grading if isinstance(grading, dict) else {}
        gid = grading.get("grade_id")
        text = _source(cell)
        if text is None or cell.get("cell_type") not in ("code", "markdown"):
            continue
        if answers_only:
            if grading.get("solution") is True and isinstance(gid, str):
                pass
            elif not isinstance(gid, str) and not grading.get("grade") and not grading.get("locked"):
                gid = OWN_CELL
            else:
                continue
        out.append((gid if isinstance(gid, str) else "", cell.get("cell_type") == "markdown", text))
    return out


def _solution_region(text: str) -> str:
    """The instructor's answer: the lines between the solution markers (the whole cell where there are
    none, as in a markdown answer)."""
    lines = text.splitlines()
    if not any(line.strip() == BEGIN_SOLUTION for line in lines):
        return text
    keep, inside = [], False
    for line in lines:
        if line.strip() in (BEGIN_SOLUTION, END_SOLUTION):
            inside = line.strip() == BEGIN_SOLUTION
        elif inside:
            keep.append(line)
    return "\n".join(keep)


def _name(word: str, after_dot: bool) -> str:
    """A name as fingerprinted: kept where renaming it would change what the code does, else ``V``."""
    return word if after_dot or word in _KEPT_NAMES else "V"


@lru_cache(maxsize=65536)
def _number(text: str) -> str:
    """A number as fingerprinted: by its value, however it is written (``0x10``, ``1_6``, ``16.00``,
    ``1.6e1`` are all ``16.0``): respelling every number, a find-and-replace, hid whole copies. Text that
    is not a number literal (the regex fallback's ``1abc``, an integer past Python's digit limit) is kept
    lower-cased."""
    word = text.lower()
    try:
        if word.endswith("j"):
            return repr(complex(word))
        if word.startswith(("0x", "0o", "0b")):
            return repr(float(int(word, 0)))
        return repr(float(word))  # decimals, exponents and "_" as Python reads them
    except (ValueError, OverflowError):
        return word


def _python_tokens(text: str, limit: int) -> list[str]:
    """Normalised tokens of code; raises what :mod:`tokenize` raises on code that does not tokenize."""
    out: list[str] = []
    prev = ""
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if len(out) >= limit:
            break
        if tok.type in _SKIPPED or tok.type == tokenize.ERRORTOKEN and not tok.string.strip():
            continue
        if tok.type == tokenize.NAME:
            word = _name(tok.string, prev == ".")
        elif tok.type in _STRINGS:
            word = "S"
        elif tok.type == tokenize.NEWLINE or tok.string == ";":
            word = ";"
        else:
            word = _number(tok.string) if tok.type == tokenize.NUMBER else tok.string
        out.append(word)
        prev = word
    return out


def _regex_tokens(text: str, limit: int) -> list[str]:
    """The fallback for a cell that does not tokenize (a trainee's unfinished code): words and
    punctuation, names normalised as in :func:`_python_tokens`, each line's end a ``;``."""
    out: list[str] = []
    prev = ""
    for line in text.splitlines():
        words = [m.group() for m in _WORD_RE.finditer(line.split("#", 1)[0])]
        for word in words + ([";"] if words else []):
            if len(out) >= limit:
                return out
            if word[0].isalpha() or word[0] == "_":
                word = _name(word, prev == ".")
            elif word[0].isdigit():
                word = _number(word)
            out.append(word)
            prev = word
    return out


# ------------------------------------------------------------------ canonical form of a code cell (AST)

AST_MAX_CHARS = 50_000
"""Characters of a code cell read through :mod:`ast` (:func:`_canonical`); a longer cell, or one that
does not parse, is tokenized as written, and so are a participant's cells past :data:`MAX_TOKENS`
characters in all (every notebook the checks accept is read in canonical form whole). Lab answers are a
few hundred to a few thousand characters; the bounds keep a hostile notebook's cost a few seconds."""
MAX_RUN = 64
"""Statements of one run of independent assignments put in canonical order (quadratic in it)."""
_FALSE_TESTS = (0, False, None, "", 0.0)
_NEUTRAL = {ast.Add: 0, ast.Sub: 0, ast.BitOr: 0, ast.BitXor: 0, ast.LShift: 0, ast.RShift: 0,
            ast.Mult: 1, ast.Div: 1, ast.FloorDiv: 1, ast.Pow: 1}


def _uses(node: ast.AST) -> tuple[set[str], set[str]]:
    """(names written, names read) in ``node``; an item stored into ``a[i]`` writes ``a``."""
    written, read = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (read if isinstance(n.ctx, ast.Load) else written).add(n.id)
        elif isinstance(n, ast.Subscript) and not isinstance(n.ctx, ast.Load) and isinstance(n.value, ast.Name):
            written.add(n.value.id)
    return written, read


def _same(a: ast.expr, b: ast.expr) -> bool:
    """``a`` and ``b`` are the same name or the same item (``x``, ``a[i]``), whatever their context."""
    if isinstance(a, ast.Name) or isinstance(b, ast.Name):
        return isinstance(a, ast.Name) and isinstance(b, ast.Name) and a.id == b.id
    return type(a) is type(b) and isinstance(a, (ast.Subscript, ast.Attribute)) and \
        ast.dump(a).replace("Store()", "Load()") == ast.dump(b).replace("Store()", "Load()")


def _is_noop(stmt: ast.stmt) -> bool:
    """A statement that computes nothing: ``pass``, a lone constant (a docstring, ``7``), ``print(...)``,
    ``x = x``, ``x += 0``, ``x *= 1``, ``assert True``."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr):
        v = stmt.value
        return isinstance(v, ast.Constant) or (isinstance(v, ast.Call) and isinstance(v.func, ast.Name)
                                                and v.func.id == "print")
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        return _same(stmt.targets[0], stmt.value)
    if isinstance(stmt, ast.AugAssign):
        v = stmt.value
        return isinstance(v, ast.Constant) and type(v.value) in (int, float) and \
            type(stmt.op) in _NEUTRAL and v.value == _NEUTRAL[type(stmt.op)]
    if isinstance(stmt, ast.Assert):
        return isinstance(stmt.test, ast.Constant) and bool(stmt.test.value)
    return False


class _Rename(ast.NodeTransformer):
    """Every read of a name of one's own for a builtin or a callable as the builtin or callable itself."""

    def __init__(self, aliases: dict[str, ast.expr], skip: set[int]):
        self.aliases, self.skip = aliases, skip

    def visit(self, node: ast.AST) -> ast.AST:
        return node if id(node) in self.skip else super().visit(node)

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if isinstance(node.ctx, ast.Load) and node.id in self.aliases:
            return copy.deepcopy(self.aliases[node.id])
        return node


class _Canon:
    """One cell to its canonical form (:func:`_canonical`): builtins and callables under a name of one's
    own back to their own name, no-op statements dropped, ``while`` counting loops as ``for ... in range``,
    ``x = x + y`` as ``x += y``, runs of independent assignments in one order."""

    def __init__(self, aliases: dict[str, ast.expr], tree: ast.Module):
        stores: dict[str, int] = defaultdict(int)
        other_use: set[str] = set()
        self.reads: set[str] = set()  # names the cell loads
        calls, bindings, skip = set(), [], set()
        self.calls: list[ast.Call] = []  # of a name: ``range(...)``, or of a name that may be an alias of it
        for n in ast.walk(tree):
            if isinstance(n, ast.Call):
                calls.add(id(n.func))
                if isinstance(n.func, ast.Name):
                    self.calls.append(n)
            elif isinstance(n, ast.stmt):
                if _is_noop(n):
                    skip.update(id(m) for m in ast.walk(n))
                elif isinstance(n, (ast.Assign, ast.ImportFrom)):
                    bindings.append(n)
            if id(n) in skip:
                continue
            if isinstance(n, ast.Name):
                if isinstance(n.ctx, ast.Load):
                    self.reads.add(n.id)
                    if id(n) not in calls:
                        other_use.add(n.id)
                else:
                    stores[n.id] += 1
            elif isinstance(n, ast.arg):
                stores[n.arg] += 2
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stores[n.name] += 2
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                for a in n.names:
                    stores[(a.asname or a.name).split(".")[0]] += 1
            elif isinstance(n, (ast.Global, ast.Nonlocal)):
                for name in n.names:
                    stores[name] += 2
        for name in [a for a in aliases if stores.get(a)]:
            del aliases[name]  # bound again in this cell: the name is no alias here
        self.once = {name for name, count in stores.items() if count == 1}
        self.only_called = self.once - other_use
        self.aliases = aliases
        self.dropped = skip  # no-op statements (and what is in them) and aliases: left out
        for stmt in sorted(bindings, key=lambda s: (s.lineno, s.col_offset)):
            if self._alias(stmt):
                self.dropped.add(id(stmt))

    def _alias(self, stmt: ast.stmt) -> bool:
        """Records ``name = builtin`` (or an alias of one), ``name = a.b.c`` only ever called, ``from
        builtins import x as name``; True where ``stmt`` is such an alias (then dropped). Only a name
        bound once in the cell: every read of it is then the builtin."""
        if isinstance(stmt, ast.ImportFrom):
            if stmt.module == "builtins" and not stmt.level and all(a.name in _BUILTIN_NAMES for a in stmt.names):
                for a in stmt.names:
                    self.aliases[a.asname or a.name] = ast.Name(a.name, ast.Load())
                return True
            return False
        if not (len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            return False
        name, value = stmt.targets[0].id, stmt.value
        if name not in self.once:
            return False
        if isinstance(value, ast.Name) and value.id in self.aliases:
            self.aliases[name] = self.aliases[value.id]
            return True
        if isinstance(value, ast.Name) and value.id in _BUILTIN_NAMES and value.id not in self.once:
            self.aliases[name] = ast.Name(value.id, ast.Load())
            return True
        chain = value
        while isinstance(chain, ast.Attribute):
            chain = chain.value
        if value is not chain and isinstance(chain, ast.Name) and name in self.only_called:
            self.aliases[name] = value
            return True
        return False

    def run(self, tree: ast.Module) -> ast.Module:
        if self.aliases:
            tree = _Rename(self.aliases, self.dropped).visit(tree)
        for n in self.calls:
            if isinstance(n.func, ast.Name) and n.func.id == "range" and not n.keywords:
                n.args = _range_args(n.args)
        self._block(tree)
        return tree

    def _block(self, node: ast.AST) -> None:
        """Canonical statement lists in ``node`` and everything in it."""
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            stmts = getattr(node, field, None)
            if not isinstance(stmts, list) or not stmts:
                continue
            if isinstance(stmts[0], ast.stmt):
                setattr(node, field, self._body(stmts) or [ast.Pass()])
            else:  # except handlers, match cases
                for item in stmts:
                    self._block(item)

    def _body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            if id(stmt) in self.dropped or _is_noop(stmt):
                continue
            if isinstance(stmt, (ast.If, ast.While)) and isinstance(stmt.test, ast.Constant):
                if stmt.test.value in _FALSE_TESTS:
                    out.extend(self._body(stmt.orelse))
                    continue
                if isinstance(stmt, ast.If):
                    out.extend(self._body(stmt.body))
                    continue
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) \
                    and all(isinstance(t, ast.Name) and t.id not in self.reads for t in stmt.targets):
                continue  # a literal stored into a name nothing in the cell reads: ``dead = 0``
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.value, ast.BinOp) \
                    and isinstance(stmt.targets[0], (ast.Name, ast.Subscript)) \
                    and _same(stmt.value.left, stmt.targets[0]):
                stmt = ast.AugAssign(stmt.targets[0], stmt.value.op, stmt.value.right)
                if _is_noop(stmt):
                    continue
            self._block(stmt)
            if isinstance(stmt, ast.While) and not stmt.orelse:
                stmt = _for_loop(out, stmt)
            out.append(stmt)
        return _in_order(out)


def _range_args(args: list[ast.expr]) -> list[ast.expr]:
    """``range``'s arguments less a start of 0 and a step of 1 (``range(0, n, 1)`` is ``range(n)``)."""
    if len(args) == 3 and isinstance(args[2], ast.Constant) and args[2].value == 1:
        args = args[:2]
    if len(args) == 2 and isinstance(args[0], ast.Constant) and args[0].value == 0:
        args = args[1:]
    return args


def _for_loop(before: list[ast.stmt], loop: ast.While) -> ast.stmt:
    """``i = a`` (the last statement before the loop that touches ``i``, then taken out of ``before``),
    then ``while i < b: ...; i += c``, as ``for i in range(a, b, c): ...``; else ``loop`` itself."""
    test, body = loop.test, loop.body
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Lt)
            and isinstance(test.left, ast.Name)):
        return loop
    name = test.left.id
    steps = [k for k, s in enumerate(body) if name in _uses(s)[0]]
    if len(steps) != 1 or len(body) < 2:
        return loop
    step = body[steps[0]]
    if not (isinstance(step, ast.AugAssign) and isinstance(step.op, ast.Add) and isinstance(step.target, ast.Name)
            and all(name not in _uses(s)[1] for s in body[steps[0] + 1:])):
        return loop  # the counter is read after it is stepped: not a for loop's
    if any(isinstance(n, (ast.Continue, ast.Break)) for s in body for n in ast.walk(s)):
        return loop
    for k in range(len(before) - 1, -1, -1):
        init = before[k]
        if isinstance(init, ast.Assign) and len(init.targets) == 1 and isinstance(init.targets[0], ast.Name) \
                and init.targets[0].id == name:
            break
        if name in set().union(*_uses(init)):
            return loop
    else:
        return loop
    del before[k]
    args = _range_args([init.value, test.comparators[0], step.value])
    return ast.For(ast.Name(name, ast.Store()), ast.Call(ast.Name("range", ast.Load()), args, []),
                   _in_order(body[:steps[0]] + body[steps[0] + 1:]), [], lineno=0)


def _movable(stmt: ast.stmt) -> bool:
    """An assignment to names or items, or a call on its own (``loss.backward()``): what
    :func:`_in_order` may put in another order."""
    if isinstance(stmt, ast.Expr):
        return isinstance(stmt.value, ast.Call)
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        targets = [stmt.target]
    else:
        return False
    return not any(isinstance(n, (ast.Attribute, ast.Starred)) and isinstance(n.ctx, ast.Store)
                   for t in targets for n in ast.walk(t))


def _effects(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names written, names read) by a movable statement; a call on its own may change anything it
    names (``cuda.syncthreads()`` orders every statement that names ``cuda``)."""
    written, read = _uses(stmt)
    return (written | read, read) if isinstance(stmt, ast.Expr) else (written, read)


_MAGIC_RE = re.compile(r"^[ \t]*[%!].*$", re.M)
_NAME_RE = re.compile(r"Name\(id='(\w+)'")


def _key(stmt: ast.stmt) -> str:
    """A statement's structure with its names as fingerprinted (kept where :func:`_name` keeps them):
    what orders a run of independent statements, the same whatever the names."""
    return _NAME_RE.sub(lambda m: m.group() if m.group(1) in _KEPT_NAMES else "Name(id='V'",
                        ast.dump(stmt, annotate_fields=False, include_attributes=False))


def _memo(stmt: ast.stmt, attr: str, f):
    """``f(stmt)``, kept on the statement: a movable statement (simple: no block of its own) is not
    changed after it is first put in order, and a block that lost dead statements is put in order again."""
    value = getattr(stmt, attr, None)
    if value is None:
        value = f(stmt)
        setattr(stmt, attr, value)
    return value


def _in_order(stmts: list[ast.stmt]) -> list[ast.stmt]:
    """Each run of assignments put in one order that keeps every dependence between them (a statement that
    writes a name another reads or writes stays on its side of it), the smallest key first: two
    independent assignments swapped give the same text."""
    out: list[ast.stmt] = []
    i = 0
    while i < len(stmts):
        if not _movable(stmts[i]):
            out.append(stmts[i])
            i += 1
            continue
        j = i
        while j < len(stmts) and j - i < MAX_RUN and _movable(stmts[j]):
            j += 1
        run = stmts[i:j]
        i = j
        if len(run) == 1:
            out.extend(run)
            continue
        uses = [_memo(s, "_td_effects", _effects) for s in run]
        after = [[b for b in range(a + 1, len(run))
                  if uses[a][0] & (uses[b][0] | uses[b][1]) or uses[b][0] & uses[a][1]] for a in range(len(run))]
        before = [0] * len(run)
        for a in range(len(run)):
            for b in after[a]:
                before[b] += 1
        keys: dict[int, str] = {}
        ready = [a for a in range(len(run)) if not before[a]]
        while ready:
            if len(ready) > 1:
                for x in ready:
                    if x not in keys:
                        keys[x] = _memo(run[x], "_td_key", _key)
                a = min(ready, key=lambda x: (keys[x], x))
            else:
                a = ready[0]
            ready.remove(a)
            out.append(run[a])
            for b in after[a]:
                before[b] -= 1
                if not before[b]:
                    ready.append(b)
    return out


# ------------------------------------------------------------------ statements whose results nothing reads

DEAD_ROUNDS = 4
"""Passes of :func:`_drop_dead` over one cell: a pass drops a chain of dead temporaries in straight-line
code whole, and in a loop (where a name read anywhere in the body is live everywhere in it) one more
link of a chain written backwards; a longer such chain keeps the rest. Each pass is one walk of the cell."""
_IMPURE = (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BLOCKS = ("body", "orelse", "finalbody")
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "globals", "dir", "__import__"})
_PURE_CALLS = frozenset({"abs", "len", "int", "float", "complex", "bool", "str", "repr", "round", "divmod", "pow",
                         "isinstance", "ord", "chr", "hash", "type", "id", "range", "slice", "min", "max"})
"""Builtins whose call computes a value and does nothing else (an allow-list: every other call may print,
write memory or advance an iterator, and stays), where the cell binds no name of theirs; ``min`` and
``max`` of two or more values only (of one iterable, they consume it)."""


def _pure_call(call: ast.Call, bound: set[str]) -> bool:
    """``call`` is of an allow-listed builtin (:data:`_PURE_CALLS`) the cell does not rebind."""
    f = call.func
    return isinstance(f, ast.Name) and f.id in _PURE_CALLS and f.id not in bound and not call.keywords \
        and not any(isinstance(a, ast.Starred) for a in call.args) \
        and (f.id not in ("min", "max") or len(call.args) >= 2)


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the cell binds (assigned, a parameter, a function, a class, an import)."""
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            out.add(n.id)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, (*_DEFS,)):
            out.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in n.names)
    return out


def _dead_target(stmt: ast.stmt) -> list[str] | None:
    """The local names an assignment binds, where it binds names only (``x = ...``, ``a, b = ...``,
    ``x += ...``, ``x: int = ...``); None for anything else (``a[i] += 1`` writes memory, ``o.x = ...`` an
    object: never dead)."""
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) and stmt.value is not None:
        targets = [stmt.target]
    else:
        return None
    names: list[str] = []
    while targets:
        t = targets.pop()
        if isinstance(t, ast.Name):
            names.append(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            targets.extend(t.elts)
        elif isinstance(t, ast.Starred):
            targets.append(t.value)
        else:
            return None
    return names


class _Facts:
    """One walk of a cell: the names each statement reads (a compound one, in its blocks too: ``loads``;
    in its own header: ``head``), the statements whose own expressions call something (or ``await``,
    ``yield``, bind by walrus: ``impure``), and each scope (the cell, each function) with the names never
    dropped in it: read by a nested function or lambda (whenever it runs), declared ``global`` or
    ``nonlocal``; a scope that reads its names by name (``locals()``, ``eval``) is left alone. Each node
    is visited once; what a block reads is the union of what its statements read."""

    def __init__(self, tree: ast.Module, keep: frozenset[str] | set[str], bound: set[str]):
        self.bound = bound  # names the cell binds: a builtin of that name is not the builtin
        self.loads: dict[int, set[str]] = {}
        self.head: dict[int, set[str]] = {}
        self.impure: set[int] = set()
        self.scopes: list[tuple[ast.AST, set[str]]] = []
        self._scope(tree, set(keep))

    def _scope(self, node: ast.AST, keep: set[str]) -> set[str]:
        entry = [node, keep, isinstance(node, ast.ClassDef)]  # a class's names are its attributes: kept
        reads: set[str] = set()
        for stmt in node.body:
            reads |= self._stmt(stmt, entry)
        if not entry[2]:
            self.scopes.append((node, keep))
        return reads

    def _stmt(self, stmt: ast.stmt, entry: list) -> set[str]:
        own: set[str] = set()
        blocks: list[list[ast.stmt]] = []
        exprs: list[ast.AST] = []
        for field, value in ast.iter_fields(stmt):
            if field in _BLOCKS and isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                blocks.append(value)
            elif field in ("handlers", "cases"):
                for item in value:
                    exprs.extend(v for f, v in ast.iter_fields(item) if f != "body" and isinstance(v, ast.AST))
                    blocks.append(item.body)
            elif isinstance(value, ast.AST):
                exprs.append(value)
            elif isinstance(value, list):
                exprs.extend(v for v in value if isinstance(v, ast.AST))
        impure = False
        for expr in exprs:
            for n in ast.walk(expr):
                if isinstance(n, ast.Name):
                    if not isinstance(n.ctx, ast.Store):
                        own.add(n.id)
                elif isinstance(n, _IMPURE):
                    if not (isinstance(n, ast.Call) and _pure_call(n, self.bound)):
                        impure = True
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _INTROSPECTION:
                        entry[2] = True
                elif isinstance(n, ast.Lambda):
                    entry[1].update(m.id for m in ast.walk(n.body) if isinstance(m, ast.Name))
        if isinstance(stmt, (ast.Global, ast.Nonlocal)):
            entry[1].update(stmt.names)
            own.update(stmt.names)  # and so kept in the scopes around it too
        if impure:
            self.impure.add(id(stmt))
        self.head[id(stmt)] = own
        if isinstance(stmt, _DEFS):
            inner = self._scope(stmt, set())
            entry[1].update(inner)  # a nested function reads its names whenever it is called
            reads = own | inner
        else:
            reads = set(own)
            for block in blocks:
                for child in block:
                    reads |= self._stmt(child, entry)
        self.loads[id(stmt)] = reads
        return reads


class _Dead:
    """One scope's dead assignments dropped (:func:`_drop_dead`): a backward pass over its statements
    with the set of names read later."""

    def __init__(self, facts: _Facts, keep: set[str]):
        self.facts, self.keep = facts, keep
        self.dropped = 0
        self.loops: list[tuple[set[str], set[str]]] = []  # (live after the loop, live at its head)
        self.floor: set[str] = set()  # live at every point of a ``try`` (any statement may jump out)
        self.lost = False
        self.changed: list[tuple[ast.AST, str]] = []  # blocks that lost a statement

    def block(self, stmts: list[ast.stmt], live: set[str]) -> tuple[list[ast.stmt], set[str]]:
        """``stmts`` less their dead statements, and the names live before them; ``live`` (the names live
        after them) is the caller's no more. ``self.lost`` is set where a statement of theirs is dropped."""
        out: list[ast.stmt] = []
        self.lost = lost = False
        for stmt in reversed(stmts):
            if isinstance(stmt, ast.Pass):
                continue  # put back where a block is left empty
            keep, live = self.stmt(stmt, live)
            if self.floor:
                live |= self.floor
            if keep:
                out.append(stmt)
            else:
                self.dropped += 1
                lost = True
        out.reverse()
        self.lost = lost
        return out, live

    def body(self, node: ast.AST, field: str, live: set[str]) -> set[str]:
        stmts, live = self.block(getattr(node, field), live)
        if self.lost:
            self.changed.append((node, field))
        setattr(node, field, stmts or ([] if field == "orelse" else [ast.Pass()]))
        return live

    def stmt(self, stmt: ast.stmt, live: set[str]) -> tuple[bool, set[str]]:
        """(whether ``stmt`` stays, the names live before it), ``live`` the names live after it (changed)."""
        facts = self.facts
        pure = id(stmt) not in facts.impure
        names = _dead_target(stmt)
        if names is not None:
            if pure and not any(n in live or n in self.keep for n in names):
                return False, live
            if not isinstance(stmt, ast.AugAssign):  # ``x += y`` reads ``x``; ``x = ...`` binds it anew
                live.difference_update(names)
            live |= facts.loads[id(stmt)]
            return True, live
        if isinstance(stmt, ast.Expr):
            if pure:
                return False, live
            live |= facts.loads[id(stmt)]
            return True, live
        if isinstance(stmt, ast.If):
            live = self.body(stmt, "body", set(live)) | self.body(stmt, "orelse", live)
            if pure and isinstance(stmt.body[0], ast.Pass) and not stmt.orelse:
                return False, live
            live |= facts.head[id(stmt)]
            return True, live
        if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            # A name read anywhere in the loop is live everywhere in it (the next iteration reads it).
            head = live | facts.loads[id(stmt)]
            self.loops.append((live, head))
            self.body(stmt, "body", set(head))
            self.loops.pop()
            return True, self.body(stmt, "orelse", set(live)) | head
        if isinstance(stmt, (ast.Break, ast.Continue)):
            if self.loops:
                live |= self.loops[-1][0 if isinstance(stmt, ast.Break) else 1]
            return True, live
        if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try), ast.With, ast.AsyncWith,
                             getattr(ast, "Match", ast.Try))):
            # Any statement may jump to a handler or ``finally``, a ``with`` may swallow what it raises,
            # a case falls to the next: a name read anywhere in it is live everywhere in it.
            whole = live | facts.loads[id(stmt)]
            floor, self.floor = self.floor, whole
            for field in _BLOCKS:
                if getattr(stmt, field, None):
                    self.body(stmt, field, set(whole))
            for item in getattr(stmt, "handlers", None) or getattr(stmt, "cases", None) or []:
                self.body(item, "body", set(whole))
            self.floor = floor
            return True, whole
        # Anything else (``return``, ``raise``, ``del``, ``assert``, ``global``, ``def``, ``class``,
        # ``import``, ``a[i] = ...``): stays, and reads what it names.
        live |= facts.loads[id(stmt)]
        return True, live


def _drop_dead(tree: ast.Module, keep: frozenset[str] | set[str]) -> None:
    """Assignments whose value nothing reads, dropped (a padding of ``t = a * b`` after every line is no
    longer text between the copied lines): in each scope (the cell, each function), an assignment to
    local names none of which is read before being bound again, whose statement calls nothing but the
    builtins of :data:`_PURE_CALLS` (any other call may print or write memory, ``cuda.atomic.add``: it
    stays); and a lone expression, or an ``if`` left
    empty, that calls nothing. A name read anywhere in a loop is live everywhere in it, and anywhere in a
    ``try`` or ``with``, everywhere in it. ``keep``: the cell's names read elsewhere (another cell of the
    participant's, the release's cells), never dropped at module level. Iterated to a fixed point (a
    chain of dead temporaries), at most :data:`DEAD_ROUNDS` times; each pass walks the cell once."""
    bound = _bound_names(tree)
    changed: dict[tuple[int, str], tuple[ast.AST, str]] = {}
    for _ in range(DEAD_ROUNDS):
        facts = _Facts(tree, keep, bound)
        dropped = 0
        for scope, names in facts.scopes:
            dead = _Dead(facts, names)
            scope.body, _ = dead.block(scope.body, set())
            if dead.lost:
                dead.changed.append((scope, "body"))
            if not scope.body and not isinstance(scope, ast.Module):
                scope.body = [ast.Pass()]
            dropped += dead.dropped
            changed.update(((id(node), field), (node, field)) for node, field in dead.changed)
        if not dropped:
            break
    # A block that lost a statement, put in its one order again (:func:`_in_order`): a dead statement
    # placed to depend on one line and be overwritten by another ordered them, and the order must be
    # the one the live statements alone give. Once, after the last pass.
    for node, field in changed.values():
        setattr(node, field, _in_order(getattr(node, field)))


def _canonical(text: str, aliases: dict[str, ast.expr],
               keep: frozenset[str] | set[str] | None = frozenset()) -> str | None:
    """A code cell's canonical text (:class:`_Canon`, then :func:`_drop_dead`), or None where it does not
    parse, even less its IPython magic and shell lines (a trainee's unfinished code), or is over
    :data:`AST_MAX_CHARS`: then it is tokenized as written. ``aliases`` carries a participant's names for
    builtins from one cell to the next; ``keep``, the names other cells read (never dead here)."""
    if len(text) > AST_MAX_CHARS:
        return None
    try:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            tree = ast.parse(_MAGIC_RE.sub("", text))  # IPython's ``%timeit ...``, ``!ls``, ``%%time``
        tree = _Canon(aliases, tree).run(tree)
        if keep is not None:  # None: the form that keeps dead statements (shared_answers reads both)
            _drop_dead(tree, keep)
        return ast.unparse(tree)
    except (SyntaxError, ValueError, RecursionError, TypeError, AttributeError):
        return None


def _tokens(text: str, markdown: bool, limit: int, aliases: dict[str, ast.expr] | None | bool = None,
            solution: bool = False, keep: frozenset[str] | set[str] | None = frozenset()) -> list[str]:
    """At most ``limit`` normalised tokens of a cell, each statement (markdown: each line) ending in ``;``:
    code in its canonical form (:func:`_canonical`) where it parses, else (and where ``aliases`` is
    False) as written. ``solution``: the course's answer cell, read without its solution markers (as
    written, only between them). ``keep``: names read outside the cell (:func:`_drop_dead`)."""
    if markdown:
        out: list[str] = []
        for line in text.lower().splitlines():
            words = _MD_WORD_RE.findall(line)
            out.extend(words + [";"] if words else [])
            if len(out) >= limit:
                break
        return out[:limit]
    canon = None if aliases is False else \
        _canonical(strip_solution_markers(text) if solution else text, {} if aliases is None else aliases,
                                              keep)
    if canon is None and solution:
        text = _solution_region(text)
    try:
        return _python_tokens(text if canon is None else canon, limit)
    except (tokenize.TokenError, SyntaxError):
        return _regex_tokens(text, limit)


def _statements(tokens: list[str]) -> list[tuple[str, ...]]:
    """Tokens cut after each ``;``, the unit in which the release's own text is recognised, less the
    statements that compute nothing: ``pass``, a lone string, an empty statement and ``print(...)``. A
    copier pads with them; an honest trainee leaves debugging prints where the room's common lines are,
    which would make rare k-grams of common text."""
    ended = tokens if not tokens or tokens[-1] == ";" else [*tokens, ";"]
    out, start = [], 0
    for i, word in enumerate(ended):
        if word == ";":
            statement = tuple(ended[start: i + 1])
            start = i + 1
            if statement[:-1] not in _NO_EFFECT and statement[:2] != ("print", "("):
                out.append(statement)
    return out


def _fingerprints(tokens: list[str], markdown: bool) -> list[int]:
    """Karp-Rabin hash of every K-gram; markdown words hash apart from code tokens."""
    salt = "m" if markdown else "c"
    ids = [zlib.crc32((salt + t).encode("utf-8", "surrogatepass")) for t in tokens]
    if len(ids) < K:
        return []
    h = 0
    for x in ids[:K]:
        h = (h * _BASE + x) % _MOD
    out = [h]
    for i in range(K, len(ids)):
        h = ((h - ids[i - K] * _TOP) * _BASE + ids[i]) % _MOD
        out.append(h)
    return out


def _read_elsewhere(cells: list[tuple[str, bool, str]], release_words: frozenset[str]) -> list[set[str]]:
    """For each cell, the words of its code that a name of the release's cells or another code cell of the
    same notebook is spelt as (in the first :data:`MAX_TOKENS` characters of code: every gradable notebook
    whole): what may read a name the cell binds at module level, so an assignment there is never dead (a
    later cell, a test cell of the release, a function of an earlier cell called later). Words, not
    parsed names: a word in another cell's string or comment keeps the name too (linear, and errs on the
    side of keeping)."""
    counts: Counter[str] = Counter()
    per: list[Counter[str]] = []
    budget = MAX_TOKENS
    for _, markdown, text in cells:
        words = Counter() if markdown or budget <= 0 else Counter(_IDENT_RE.findall(text, 0, budget))
        budget -= 0 if markdown else len(text)
        per.append(words)
        counts.update(words)
    return [{w for w, k in words.items() if counts[w] > k or w in release_words} for words in per]


def _answers(nb: object, released: dict[str, set[tuple[str, ...]]], solution: bool,
             given_texts: frozenset[str] = frozenset(), release_words: frozenset[str] = frozenset(),
             drop_dead: bool = True) -> _Answers:
    """Fingerprint what a participant added to each cell: its statements less those the release's same
    cell holds (compared normalised, so a renamed parameter does not make the header an answer). A
    trainee's cell is read whatever its metadata says (a copy in a cell marked with a made-up
    ``grade_id``, or as a test, was missed) and named by its ``grade_id`` only where the release has that
    cell, else :data:`OWN_CELL` (a finding's cells go into hold lines: a trainee's ``grade_id`` is any
    text). A cell whose text is a release cell's, as released, adds nothing and is not read (the course's
    locked and test cells, up to half the budget, would otherwise count against it). Only the first
    :data:`MAX_TOKENS` tokens read count."""
    answers = _Answers(starts=defaultdict(list), cell_of=[], unit=[])
    aliases: dict[str, ast.expr] = {}
    read = parsed = 0
    cells = _cells(nb, answers_only=solution)
    elsewhere = _read_elsewhere(cells, release_words)
    for unit, (gid, markdown, text) in enumerate(cells):
        if read >= MAX_TOKENS:
            break
        if not solution and text in given_texts:
            continue
        if gid not in released or gid in ("", OWN_CELL):
            gid = OWN_CELL
        if solution and markdown:
            text = _solution_region(text)
        parsed += len(text)  # every gradable notebook is read in canonical form whole; a bigger one no more
        tokens = _tokens(text, markdown, MAX_TOKENS - read, aliases if parsed <= MAX_TOKENS else False,
                         solution and not markdown, elsewhere[unit] if drop_dead else None)
        read += len(tokens)
        given = released.get(gid, set())
        added = [word for statement in _statements(tokens) if statement not in given for word in statement]
        offset = len(answers.cell_of)
        for i, fp in enumerate(_fingerprints(added, markdown)):
            answers.starts[fp].append(offset + i)
        answers.cell_of.extend([gid] * len(added))
        answers.unit.extend([unit] * len(added))
    return answers


def _covered(answers: _Answers, fps: list[int]) -> tuple[int, set[str]]:
    """How many of a participant's tokens the fingerprints ``fps`` cover, and in which cells."""
    starts = sorted(p for fp in fps for p in answers.starts[fp])
    count, end = 0, -1
    for p in starts:
        count += p + K - max(p, end)
        end = p + K
    return count, {answers.cell_of[p] for p in starts}


def _covered_per_cell(answers: _Answers, fps: list[int]) -> dict[int, int]:
    """How many of a participant's tokens the fingerprints ``fps`` cover in each cell (a k-gram lies in
    one cell)."""
    starts = sorted(p for fp in fps for p in answers.starts[fp])
    out: dict[int, int] = defaultdict(int)
    end = -1
    for p in starts:
        out[answers.unit[p]] += p + K - max(p, end)
        end = p + K
    return out


def _whole_cells(covered: dict[int, int], own: dict[int, int]) -> dict[int, int]:
    """The cells (and their shared tokens) that are almost wholly shared: at least
    :data:`PART_MIN_TOKENS` shared tokens, and :data:`PART_FRACTION` of the cell's own answer text."""
    return {u: c for u, c in covered.items() if c >= PART_MIN_TOKENS and c >= PART_FRACTION * own[u]}


def shared_answers(release: dict, submissions: dict[str, dict], solution: dict | None = None, *,
                   min_tokens: int = MIN_TOKENS, min_fraction: float = MIN_FRACTION) -> list[Shared]:
    """Pairs of ``submissions`` (student id -> notebook of one lab), and copies of ``solution`` (the
    instructor's source notebook), that share rare answer text: at least ``min_tokens`` tokens and at
    least ``min_fraction`` of the smaller one's own answer text. Strongest first, then by ids.

    The room is read in two canonical forms, with the statements whose results nothing reads dropped
    (:func:`_drop_dead`: a copy padded with dead computed lines) and with them kept (a copy of a notebook
    whose own text is mostly such lines: dropped, it holds too little rare text), and a pair is reported
    where either form shows it, with the stronger of the two findings."""
    best: dict[tuple[str, str], Shared] = {}
    for drop_dead in (True, False):
        for s in _shared_in_form(release, submissions, solution, min_tokens, min_fraction, drop_dead):
            if (s.a, s.b) not in best or s.tokens > best[(s.a, s.b)].tokens:
                best[(s.a, s.b)] = s
    return sorted(best.values(), key=lambda s: (-s.tokens, s.a, s.b))


def _shared_in_form(release: dict, submissions: dict[str, dict], solution: dict | None, min_tokens: int,
                    min_fraction: float, drop_dead: bool) -> list[Shared]:
    """:func:`shared_answers` in one canonical form: dead statements dropped or kept (``drop_dead``)."""
    released: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    release_fps: set[int] = set()
    release_cells = _cells(release, answers_only=False)
    given_texts = frozenset(text for _, _, text in release_cells)
    release_words = frozenset(w for _, markdown, text in release_cells if not markdown
                              for w in _IDENT_RE.findall(text, 0, MAX_TOKENS))
    for gid, markdown, text in release_cells:
        statements = _statements(_tokens(text, markdown, MAX_TOKENS, keep=release_words if drop_dead else None))
        released[gid].update(statements)
        released[OWN_CELL].update(statements)  # course text pasted into a cell of one's own is not one's own
        release_fps.update(_fingerprints([word for statement in statements for word in statement], markdown))
    names = sorted(submissions)
    parts = [_answers(submissions[name], released, solution=False, given_texts=given_texts,
                      release_words=release_words, drop_dead=drop_dead) for name in names]
    if solution is not None:
        names.append(SOLUTION)
        parts.append(_answers(solution, released, solution=True, release_words=release_words, drop_dead=drop_dead))
    holders: dict[int, list[int]] = defaultdict(list)
    for index, part in enumerate(parts):
        for fp in part.starts:
            if fp not in release_fps:
                holders[fp].append(index)
    room = sum(1 for part in parts if part.starts)
    limit = max(COMMON_FLOOR, COMMON_FRACTION * room)
    rare = {fp: who for fp, who in holders.items() if len(who) <= limit}
    by_pair: dict[tuple[int, int], list[int]] = defaultdict(list)
    for fp, who in rare.items():
        for pair in combinations(who, 2):
            by_pair[pair].append(fp)
    own_cells = [_covered_per_cell(part, [fp for fp in part.starts if fp in rare]) for part in parts]
    own = [sum(cells.values()) for cells in own_cells]
    found = []
    for (i, j), fps in by_pair.items():
        (tokens_i, cells_i), (tokens_j, cells_j) = _covered(parts[i], fps), _covered(parts[j], fps)
        tokens = min(tokens_i, tokens_j)
        why = ""
        if tokens < min_tokens or tokens < min_fraction * min(own[i], own[j]):
            # Not most of their answers: is one answer (a cell) copied almost whole, on both sides?
            whole_i = _whole_cells(_covered_per_cell(parts[i], fps), own_cells[i])
            whole_j = _whole_cells(_covered_per_cell(parts[j], fps), own_cells[j])
            if not (whole_i and whole_j):
                continue
            tokens_i, tokens_j = sum(whole_i.values()), sum(whole_j.values())
            tokens = min(tokens_i, tokens_j)
            cells_i = {parts[i].cell_of[parts[i].unit.index(u)] for u in whole_i}
            cells_j = {parts[j].cell_of[parts[j].unit.index(u)] for u in whole_j}
            why = "part"
        found.append(Shared(a=names[i], b=names[j], tokens=tokens, fraction_a=tokens_i / own[i],
                            fraction_b=tokens_j / own[j], cells=tuple(sorted(cells_i | cells_j)),
                            cells_a=tuple(sorted(cells_i)), cells_b=tuple(sorted(cells_j)), why=why))
    found += _rings(parts, names, holders, limit, {(s.a, s.b) for s in found})
    return sorted(found, key=lambda s: (-s.tokens, s.a, s.b))


def _rings(parts: list[_Answers], names: list[str], holders: dict[int, list[int]], limit: float,
           reported: set[tuple[str, str]]) -> list[Shared]:
    """Copy rings too big for the room's common rule: more than ``limit`` (and at most :data:`RING_MAX`)
    participants who hold the same text, at least :data:`RING_MIN_TOKENS` tokens of it in each, and at
    least :data:`RING_FRACTION` of each one's own answer text (rare in the room) and this text together
    (a leaked solution handed in by three trainees, four friends handing in one notebook, in a room of
    20). Text is grouped by exactly who holds it: honest trainees who write the canonical answer of a cell
    share that cell's runs between lines of their own, each run with other holders, and the rest of their
    answers is their own."""
    ring = {fp: who for fp, who in holders.items() if limit < len(who) <= RING_MAX}
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for fp, who in ring.items():
        groups[tuple(who)].append(fp)
    found = []
    for who, fps in groups.items():
        covered = {i: _covered(parts[i], fps) for i in who}
        if any(c < RING_MIN_TOKENS for c, _ in covered.values()):
            continue
        # The ring's text: what two or more of them, and no one else, hold (a copy's own disguise splits
        # some of it among fewer of them); set against each one's own answer text rare in the room.
        group = set(who)
        ring_fps = {i: [fp for fp in parts[i].starts if 1 < len(holders.get(fp, ())) and
                        set(holders[fp]) <= group] for i in who}
        covered = {i: _covered(parts[i], ring_fps[i]) for i in who}
        own = {i: _covered(parts[i], ring_fps[i] + [fp for fp in parts[i].starts
                                                    if 0 < len(holders.get(fp, ())) <= limit])[0] for i in who}
        if any(c < RING_FRACTION * own[i] for i, (c, _) in covered.items()):
            continue
        held = tuple(names[i] for i in who)
        for i, j in combinations(who, 2):
            if (names[i], names[j]) in reported:
                continue
            (tokens_i, cells_i), (tokens_j, cells_j) = covered[i], covered[j]
            found.append(Shared(a=names[i], b=names[j], tokens=min(tokens_i, tokens_j),
                                fraction_a=tokens_i / own[i], fraction_b=tokens_j / own[j],
                                cells=tuple(sorted(cells_i | cells_j)), cells_a=tuple(sorted(cells_i)),
                                cells_b=tuple(sorted(cells_j)), why="ring", ring=held))
    return found
