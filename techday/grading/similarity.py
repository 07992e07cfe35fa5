"""Answers shared between trainees: which submissions of one lab hold the same answer text.

A trainee who copies a neighbour's passing notebook, or a leaked solution, passes every test; only a
comparison of the submissions with each other shows it. The method is MOSS's (Schleimer, Wilkerson and
Aiken, "Winnowing: local algorithms for document fingerprinting", SIGMOD 2003), on what each trainee
*added* to the released answer cells:

1. **Answer text.** Every code and markdown cell of a submission, whatever its metadata claims (a
   trainee writes it: a copy in a new cell marked with a made-up ``grade_id`` or as a test was missed),
   less the release's text (step 3); a cell is named by its ``grade_id`` only where the release has
   that cell, else :data:`OWN_CELL`. For the course's solution, its answer cells, only the region
   between ``### BEGIN SOLUTION`` and ``### END SOLUTION``.
2. **Tokens, normalised against disguise.** Code goes through :mod:`tokenize` (a regex split where a
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
3. **Only what the trainee added.** Statements the release's same cell holds (compared normalised: a
   renamed parameter does not make the header an answer) are dropped, and so is any fingerprint of the
   release: a cell left as released, or course code pasted into an answer, shares nothing.
4. **Fingerprints.** A stable rolling hash (Karp-Rabin over ``zlib.crc32`` of each token: Python's own
   ``hash`` is salted per process) of every run of :data:`K` tokens inside one cell. All k-grams, not a
   winnowed subset: a room's answers are small (capped at :data:`MAX_TOKENS` tokens per participant) and
   every k-gram lets the shared text be counted in tokens. Fingerprints are matched across cells, so
   moving answer text to another cell, or reordering cells, hides nothing.
5. **Room frequency.** A fingerprint held by more than ``max(COMMON_FLOOR, COMMON_FRACTION * room)``
   participants (those with any answer text) is the natural way to write that line and is ignored. The
   floor of 3 keeps a ring of three trainees sharing one notebook visible in a small room. The course's
   solution counts as a participant here: where many trainees write the canonical answer honestly, its
   fingerprints become common and drop out, so writing the obvious answer is never a finding; a copy of
   the solution in a room that did not write it stays rare.
6. **Pairs.** An inverted index (fingerprint -> holders) gives, for each pair holding a rare fingerprint,
   the fingerprints they share; the tokens these cover are counted in each. Each participant's *own*
   answer text is the tokens covered by any rare fingerprint (what is not common, not released, not
   too short to fingerprint). A pair is reported when both cover at least ``min_tokens`` shared tokens
   and the shared tokens are at least ``min_fraction`` of the smaller own text: padding one copy with
   text of one's own then hides nothing. Defaults and their measurement: grading/README.md.

Pure: no files, no randomness; the same input gives the same sorted list, whatever the dicts' order.

What it does not cover (measured, in grading/README.md, "Answers shared between trainees"): answers too
short to tell apart (under ``MIN_TOKENS`` shared), a copy rewritten by hand, rings of four or more in a
room under about 80, a copy of an answer most of the room wrote the same way; and which of a pair
copied. A finding is a reason for a person to look, never a verdict.
"""

from __future__ import annotations

import builtins
import io
import keyword
import re
import tokenize
import zlib
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from ..course.labsrc import BEGIN_SOLUTION, END_SOLUTION

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
MIN_FRACTION = 0.6
"""Share of the smaller own answer text the shared text must reach. Guards against two long answers that
coincide here and there (the grid-stride loop, the same unusual order of two lines)."""

_KEPT_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER,
            *(getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n))}
_STRINGS = {tokenize.STRING, *(getattr(tokenize, n) for n in ("FSTRING_START",) if hasattr(tokenize, n))}
_WORD_RE = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|[^\w\s]")
_MD_WORD_RE = re.compile(r"\w+")
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

    def note(self) -> str:
        """One line for an instructor."""
        return (f"answers shared between {self.a} and {self.b} ({self.tokens} tokens, "
                f"{round(100 * self.fraction_a)} % / {round(100 * self.fraction_b)} % of their own answer text; "
                f"cells: {', '.join(self.cells)})")


@dataclass
class _Answers:
    """One participant's fingerprints: where each starts (token index) and which cell each token is in."""

    starts: dict[int, list[int]]
    cell_of: list[str]


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


def _tokens(text: str, markdown: bool, limit: int) -> list[str]:
    """At most ``limit`` normalised tokens of a cell, each statement (markdown: each line) ending in ``;``."""
    if markdown:
        out: list[str] = []
        for line in text.lower().splitlines():
            words = _MD_WORD_RE.findall(line)
            out.extend(words + [";"] if words else [])
            if len(out) >= limit:
                break
        return out[:limit]
    try:
        return _python_tokens(text, limit)
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


def _answers(nb: object, released: dict[str, set[tuple[str, ...]]], solution: bool,
             given_texts: frozenset[str] = frozenset()) -> _Answers:
    """Fingerprint what a participant added to each cell: its statements less those the release's same
    cell holds (compared normalised, so a renamed parameter does not make the header an answer). A
    trainee's cell is read whatever its metadata says (a copy in a cell marked with a made-up
    ``grade_id``, or as a test, was missed) and named by its ``grade_id`` only where the release has that
    cell, else :data:`OWN_CELL` (a finding's cells go into hold lines: a trainee's ``grade_id`` is any
    text). A cell whose text is a release cell's, as released, adds nothing and is not read (the course's
    locked and test cells, up to half the budget, would otherwise count against it). Only the first
    :data:`MAX_TOKENS` tokens read count."""
    answers = _Answers(starts=defaultdict(list), cell_of=[])
    read = 0
    for gid, markdown, text in _cells(nb, answers_only=solution):
        if read >= MAX_TOKENS:
            break
        if not solution and text in given_texts:
            continue
        if gid not in released or gid in ("", OWN_CELL):
            gid = OWN_CELL
        tokens = _tokens(_solution_region(text) if solution else text, markdown, MAX_TOKENS - read)
        read += len(tokens)
        given = released.get(gid, set())
        added = [word for statement in _statements(tokens) if statement not in given for word in statement]
        offset = len(answers.cell_of)
        for i, fp in enumerate(_fingerprints(added, markdown)):
            answers.starts[fp].append(offset + i)
        answers.cell_of.extend([gid] * len(added))
    return answers


def _covered(answers: _Answers, fps: list[int]) -> tuple[int, set[str]]:
    """How many of a participant's tokens the fingerprints ``fps`` cover, and in which cells."""
    starts = sorted(p for fp in fps for p in answers.starts[fp])
    count, end = 0, -1
    for p in starts:
        count += p + K - max(p, end)
        end = p + K
    return count, {answers.cell_of[p] for p in starts}


def shared_answers(release: dict, submissions: dict[str, dict], solution: dict | None = None, *,
                   min_tokens: int = MIN_TOKENS, min_fraction: float = MIN_FRACTION) -> list[Shared]:
    """Pairs of ``submissions`` (student id -> notebook of one lab), and copies of ``solution`` (the
    instructor's source notebook), that share rare answer text: at least ``min_tokens`` tokens and at
    least ``min_fraction`` of the smaller one's own answer text. Strongest first, then by ids."""
    released: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    release_fps: set[int] = set()
    release_cells = _cells(release, answers_only=False)
    given_texts = frozenset(text for _, _, text in release_cells)
    for gid, markdown, text in release_cells:
        statements = _statements(_tokens(text, markdown, MAX_TOKENS))
        released[gid].update(statements)
        released[OWN_CELL].update(statements)  # course text pasted into a cell of one's own is not one's own
        release_fps.update(_fingerprints([word for statement in statements for word in statement], markdown))
    names = sorted(submissions)
    parts = [_answers(submissions[name], released, solution=False, given_texts=given_texts) for name in names]
    if solution is not None:
        names.append(SOLUTION)
        parts.append(_answers(solution, released, solution=True))
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
    own = [_covered(part, [fp for fp in part.starts if fp in rare])[0] for part in parts]
    found = []
    for (i, j), fps in by_pair.items():
        (tokens_i, cells_i), (tokens_j, cells_j) = _covered(parts[i], fps), _covered(parts[j], fps)
        tokens = min(tokens_i, tokens_j)
        if tokens < min_tokens or tokens < min_fraction * min(own[i], own[j]):
            continue
        found.append(Shared(a=names[i], b=names[j], tokens=tokens, fraction_a=tokens_i / own[i],
                            fraction_b=tokens_j / own[j], cells=tuple(sorted(cells_i | cells_j)),
                            cells_a=tuple(sorted(cells_i)), cells_b=tuple(sorted(cells_j))))
    return sorted(found, key=lambda s: (-s.tokens, s.a, s.b))
