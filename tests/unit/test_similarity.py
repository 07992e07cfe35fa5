"""Answers shared between trainees (techday/grading/similarity.py), on a real lab's notebooks: the source
notebook as ``techday build`` writes it (:func:`read_lab`), its release as ``nbgrader generate_assignment``
makes it (nbgrader's own ClearSolutions), and answers from the lab's solution and its right and wrong
variants (tests/right_solutions, tests/wrong_solutions). Each test names the wrong detector it catches."""

from __future__ import annotations

import ast
import builtins
import copy
import json
import random
import re
import time
from functools import cache
from itertools import combinations

import pytest

from techday.course.labsrc import read_lab, strip_solution_markers
from techday.grading.similarity import MIN_FRACTION, MIN_TOKENS, SOLUTION, Shared, shared_answers
from techday.validate.variants import read_right_solutions, read_wrong_solutions
from tests.conftest import ROOT

LAB = "03-atomics-and-reductions"


@cache
def _lab(lab: str = LAB) -> tuple[str, str]:
    """(source notebook, release notebook) of ``lab`` as JSON text: built once, copied per test."""
    import nbformat
    from nbgrader.preprocessors import ClearSolutions

    nb, _ = read_lab(ROOT / "labs" / lab / f"{lab}.py", lab)
    release, _ = ClearSolutions(enforce_metadata=True).preprocess(nbformat.from_dict(copy.deepcopy(nb)), {})
    return json.dumps(nb), json.dumps(release)


def source_nb(lab: str = LAB) -> dict:
    return json.loads(_lab(lab)[0])


def release_nb(lab: str = LAB) -> dict:
    return json.loads(_lab(lab)[1])


def answer_ids(nb: dict) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")]


def handed_in(answers: dict[str, str], lab: str = LAB) -> dict:
    """The release with the answer cells named in ``answers`` (grade_id -> source) filled in."""
    nb = release_nb(lab)
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers and cell["metadata"]["nbgrader"].get("solution"):
            cell["source"] = answers[gid]
    return nb


def answers_of(nb: dict) -> dict[str, str]:
    """grade_id -> source of a notebook's answer cells."""
    return {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")}


def solution_answers(lab: str = LAB) -> dict[str, str]:
    """grade_id -> the course's solution as a perfect trainee types it (markers removed)."""
    return {c["metadata"]["nbgrader"]["grade_id"]: strip_solution_markers(c["source"])
            for c in source_nb(lab)["cells"] if c["metadata"].get("nbgrader", {}).get("solution")}


def variants(lab: str = LAB) -> dict[str, list[str]]:
    """grade_id -> every answer this course keeps for it: solution, right and wrong variants."""
    out: dict[str, list[str]] = {gid: [src] for gid, src in solution_answers(lab).items()}
    for kind, read in (("right", read_right_solutions), ("wrong", read_wrong_solutions)):
        for v in read(ROOT / "tests" / f"{kind}_solutions" / f"{lab}.py"):
            out[v.cell].append(v.source)
    return out


# A trainee's own way of writing: lines a copier would not have by chance (numbers differ per trainee).
# Mostly lines the program reads (live): an intermediate variable read next, an extra check, a helper
# called, a print; ``{v}`` is a name the answer has bound before the line.
_LIVE = ["{n} = {v} * {a}\n{i}assert {n} != {b}", "if {v} is None:\n{i}    raise ValueError({a}, 'no {v}')",
         "assert {v} is not None, {a}", "{n} = ({v}, {a}, {b})\n{i}assert {n}[1] < {n}[2] + {c}",
         "def {n}(q):\n{i}    return q * {a} + {b}\n{i}assert {n}({v}) != {c}"]
_PRINTS = ["print({v}, {a})", "print(f'{v}={{{v}}} at {a}')"]
# Dead debugging lines (a value computed and never read), as honest trainees leave them.
_OWN = ["{n} = {a} * {b}", "{n} = ({a}, {b}, {c})", "{n} = [{a}, {b}][{c} % 2]",
        "if {a} > {b}:\n{i}    {n} = {c}"]
# The same formula written otherwise, each taken or not per trainee.
_FORMULAS = [(r"\b(\w+) \* \1\b", r"\1 ** 2"), (r" // 2\b", " >> 1"), (r"\brange\(0, ", "range("),
             (r"\blen\((\w+)\)", r"\1.shape[0]"), (r"\.shape\[0\]", ".size")]
_BOUND = re.compile(r"^\s*(?:for\s+)?(\w+)\s*(?:=(?!=)|\+=|-=|\*=|//=| in )")


def _bound_names(line: str) -> list[str]:
    """Names a line binds: its assignment's or loop's target, a function's parameters."""
    m = re.match(r"^\s*def \w+\((.*)\)", line)
    if m:
        return [p.split("=")[0].split(":")[0].strip() for p in m[1].split(",") if p.strip()]
    m = _BOUND.match(line)
    return [m[1]] if m and m[1] not in ("if", "while", "return") else []


def _bound_intermediate(line: str, n: str) -> tuple[str, str] | None:
    """A ``for ... in range(...)`` line with its bound in a variable of one's own: (the line that binds
    it, the loop line reading it); None for another line."""
    m = re.match(r"^(\s*)for .* in range\((.*)\):\s*(#.*)?$", line)
    if not m:
        return None
    try:
        call = ast.parse(f"range({m[2]})", mode="eval").body
    except SyntaxError:
        return None
    stop = call.args[0 if len(call.args) == 1 else 1]
    text = ast.get_source_segment(f"range({m[2]})", stop)
    if not text or isinstance(stop, (ast.Name, ast.Constant)):
        return None
    return f"{m[1]}{n} = {text}", line.replace(text, n, 1)


def line_code(line: str) -> str:
    """A line less its strings and comment (roughly: enough to count brackets and see a block's colon)."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|#.*$", "", line).rstrip()


def own_version(source: str, rng: random.Random, given: set[str]) -> str:
    """``source`` as one more trainee writes it: lines of their own between the answer's lines, mostly
    live (an intermediate variable read next, an extra check, a helper, a print), a loop's bound in a
    variable of their own, the same formula written otherwise, some ``x += y`` written ``x = x + y``, and
    some dead debugging lines. Lines of the release (``given``) are left alone; nothing is put inside a
    bracket or a docstring."""
    formulas = [f for f in _FORMULAS if rng.random() < 0.3]
    out, bound, depth, in_doc = [], [], 0, False
    for line in source.splitlines():
        body = re.sub(r"#[^'\"]*$", "", line).strip()
        if body.count('"""') % 2:
            in_doc = not in_doc
        if line.strip() in given or not body:
            out.append(line)
            bound += _bound_names(line)
            continue
        m = re.match(r"^(\s*)(\w[\w\[\]]*) \+= (.+)$", line)
        line = f"{m[1]}{m[2]} = {m[2]} + {m[3]}" if m and rng.random() < 0.5 else line
        for pattern, repl in formulas:
            line = re.sub(pattern, repl, line)
        loop = _bound_intermediate(line, f"t{rng.randrange(100)}") if depth == 0 and rng.random() < 0.4 else None
        if loop:
            out.extend(loop)
        else:
            out.append(line)
        code = line_code(line)
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        bound += _bound_names(line)
        if depth or in_doc or body.endswith(("\\", ",")) or body.startswith(("return", "raise", "@", "else", "elif")):
            continue
        indent = line[: len(line) - len(line.lstrip())] + ("    " if line_code(line).endswith(":") else "")
        names = [b for b in bound[-3:] if b.isidentifier() and b not in ("self", "_")]
        # Live lines after about a third of the lines (as many as the first model's lines of one's own),
        # and on top of them some prints and dead debugging lines.
        for pool, p in ((_LIVE, 0.35), (_PRINTS, 0.1), (_OWN, 0.1)):
            if rng.random() < p:
                own = rng.choice(pool if names else _OWN).format(
                    n=f"t{rng.randrange(100)}", a=rng.randrange(10_000), v=rng.choice(names or ["x"]),
                    b=rng.randrange(10_000), c=rng.randrange(10_000), i=indent)
                out.append(indent + own)
    return "\n".join(out)


def disguised(source: str, salt: str) -> str:
    """A copy made to look otherwise: every local name renamed, comments rewritten, blank lines and dead
    ``pass`` and ``print`` lines added (after 40 % of the lines, chosen by ``salt``), two adjacent
    simple statements of the body swapped (which, chosen by ``salt`` too)."""
    names = set(re.findall(r"^\s*(?:for\s+)?([a-z_]\w*)\s*(?:=|\+=|-=|//=|\*=| in )", source, re.M))
    for name in sorted(names):
        source = re.sub(rf"(?<![\w.]){name}\b", f"{name}_{salt}", source)
    lines = [re.sub(r"#.*$", f"# my own note {salt}", line) if "#" in line and '"' not in line else line
             for line in source.splitlines()]
    simple = {i for i, line in enumerate(lines) if line.startswith("    ") and not line.startswith("     ")
              and not line.strip().startswith(('"""', "#", "return")) and not line.rstrip().endswith(":")}
    rng = random.Random(salt + source)
    adjacent = sorted(i for i in simple if i + 1 in simple)
    if adjacent:
        first = rng.choice(adjacent)
        lines[first], lines[first + 1] = lines[first + 1], lines[first]
    out = []
    for line in lines:
        out.append(line)
        if rng.random() < 0.4 and line.strip() and not line.rstrip().endswith(":") and line.startswith("    "):
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(rng.choice([["", f"{indent}pass"], [f"{indent}print({salt!r})", ""]]))
    return "\n".join(out)


# Evasions of a copier who knows how copies are found (grading/README.md, "Answers shared between
# trainees"): each keeps the program and changes its text.

_BUILTINS = set(dir(builtins))


def _names(node, ctx):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _independent(a, b):
    wa, wb = _names(a, ast.Store), _names(b, ast.Store)
    for t in (a, b):
        for n in ast.walk(t):
            if isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, ast.Store):
                return False
    ra, rb = _names(a, ast.Load), _names(b, ast.Load)
    return not (wa & (wb | rb) or wb & ra)


def _simple(s):
    return isinstance(s, (ast.Assign, ast.AugAssign))


def swapped(source):
    """Every adjacent pair of independent simple assignments swapped (left to right, non-overlapping)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            i = 0
            while i + 1 < len(body):
                if _simple(body[i]) and _simple(body[i + 1]) and _independent(body[i], body[i + 1]):
                    body[i], body[i + 1] = body[i + 1], body[i]
                    i += 2
                else:
                    i += 1
    return ast.unparse(tree)


def aliased(source, salt):
    """Every builtin the answer calls bound to a name of one's own first (``r_x = range``)."""
    tree = ast.parse(source)
    used = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in _BUILTINS
                   and isinstance(n.ctx, ast.Load)})
    alias = {b: f"{b[:2]}_{salt}" for b in used}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id in alias and isinstance(n.ctx, ast.Load):
            n.id = alias[n.id]
    head = [ast.parse(f"{a} = {b}").body[0] for b, a in alias.items()]
    tree.body[:0] = head
    return ast.unparse(tree)


def whiled(source):
    """Every ``for i in range(...)`` loop written as a while loop."""
    class ToWhile(ast.NodeTransformer):
        def visit_For(self, node):
            self.generic_visit(node)
            it = node.iter
            if not (isinstance(node.target, ast.Name) and isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                    and it.func.id == "range" and 1 <= len(it.args) <= 3 and not node.orelse):
                return node
            args = it.args
            start, stop, step = (ast.Constant(0), args[0], ast.Constant(1)) if len(args) == 1 else \
                (args[0], args[1], args[2] if len(args) == 3 else ast.Constant(1))
            name = node.target.id
            init = ast.Assign([ast.Name(name, ast.Store())], start, lineno=0)
            step_ = ast.AugAssign(ast.Name(name, ast.Store()), ast.Add(), step)
            loop = ast.While(ast.Compare(ast.Name(name, ast.Load()), [ast.Lt()], [stop]), node.body + [step_], [])
            return [init, loop]
    tree = ToWhile().visit(ast.parse(source))
    return ast.unparse(ast.fix_missing_locations(tree))


def padded(source, salt):
    """A no-op or dead statement after every simple statement: ``x = x``, ``x += 0``, ``if False: ...``,
    ``dead_k = 0``, a bare constant."""
    rng = random.Random(salt + source)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        out = []
        for k, s in enumerate(body):
            out.append(s)
            if isinstance(s, (ast.Assign, ast.AugAssign, ast.Expr)) and not (
                    isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)):
                stores = sorted(_names(s, ast.Store))
                choices = [f"dead_{salt}{k} = 0", f"if False:\n    z_{salt} = {k}", f"{k + 7}"]
                if stores:
                    choices += [f"{stores[0]} = {stores[0]}", f"{stores[0]} += 0"]
                out.append(ast.parse(rng.choice(choices)).body[0])
        node.body = out
    return ast.unparse(tree)


def computed_dead(source, salt):
    """A dead statement that computes something at the top of every block and after every statement (a
    loop or an ``if`` too), from the names it uses (a product, an item, a tuple, a comprehension, an
    attribute), half of them a chain of two (``d = a * 3`` then ``e = d + a``), and before some
    assignments a dead store to the very name it binds (``total = x * 2`` then ``total = 0.0``): nothing
    reads any of them, and none calls anything."""
    rng = random.Random(salt + source)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list) or isinstance(node, ast.Module):
            continue
        out = [ast.parse(f"d_{salt} = {rng.randrange(2, 99)} * {rng.randrange(2, 99)}").body[0]]
        for k, s in enumerate(body):
            k = rng.randrange(2, 99)
            names = sorted(_names(s, ast.Store)) or sorted(_names(s, ast.Load) - _BUILTINS)
            if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) \
                    and s.targets[0].id not in _names(s.value, ast.Load) and names and rng.random() < 0.3:
                out.append(ast.parse(f"{s.targets[0].id} = {rng.choice(names)} * {k + 2}").body[0])
            out.append(s)
            if not isinstance(s, (ast.Return, ast.Raise, ast.Break, ast.Continue)) and not (
                    isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)):
                v, d, e = rng.choice(names or ["0"]), f"d_{salt}{k}", f"e_{salt}{k}"
                one = [f"{d} = {v} * {k + 3}", f"{d} = {v}[{k}] + {v}[0]", f"{d} = ({v}, {k + 1})",
                       f"{d} = [q * {k} for q in {v}]", f"{d} = {v}.shape if {k} else {v}"]
                two = [f"{d} = {v} * {k + 3}\n{e} = {d} + {v}", f"{d} = {v} - {k}\n{e} = {d} * {d}"]
                out.extend(ast.parse(rng.choice(one if rng.random() < 0.5 else two)).body)
        node.body = out
    return ast.unparse(tree)


def rewritten(source: str, salt: str) -> str:
    """Every evasion at once, then :func:`disguised`: what a copier does who knows the detector."""
    try:
        source = padded(aliased(whiled(swapped(source)), salt), salt)
    except SyntaxError:
        pass
    return disguised(source, salt)


def reordered(nb: dict) -> dict:
    """The notebook with its answer cells in reverse order (the grade ids travel with the cells)."""
    where = [i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("solution")]
    cells = [nb["cells"][i] for i in where]
    for i, cell in zip(where, reversed(cells)):
        nb["cells"][i] = cell
    return nb


def room(n: int, seed: int | str, lab: str = LAB) -> dict[str, dict]:
    """``n`` honest trainees: each answer one of the course's variants, written their own way."""
    given = {line.strip() for c in release_nb(lab)["cells"] for line in c["source"].splitlines()}
    options = variants(lab)
    out = {}
    for k in range(n):
        rng = random.Random(f"{seed}-{k}")
        out[f"t{k:03d}"] = handed_in({gid: own_version(rng.choice(srcs), rng, given)
                                      for gid, srcs in sorted(options.items())}, lab)
    return out


def pairs(found: list[Shared]) -> set[tuple[str, str]]:
    return {(s.a, s.b) for s in found}


def test_a_disguised_copy_of_a_neighbour_is_reported():
    """Caught: a detector fooled by renamed variables, rewritten comments, blank lines, dead code or
    reordered cells (raw text or name-keeping tokens; fingerprints that span or compare cells in order)."""
    subs = room(30, seed=1)
    subs["zoe"] = reordered(handed_in({gid: disguised(src, "zz") for gid, src in answers_of(subs["t007"]).items()}))
    found = shared_answers(release_nb(), subs)
    assert pairs(found) == {("t007", "zoe")}, [s.note() for s in found]
    (copy_,) = found
    # Every answer holding rare text is named; t007's histogram_atomic is the room's line, its one line
    # of t007's own a dead debugging line (dropped): no rare text there.
    assert set(copy_.cells) >= set(answer_ids(release_nb())) - {"histogram_atomic"}, copy_.cells
    assert copy_.tokens >= MIN_TOKENS and max(copy_.fraction_a, copy_.fraction_b) >= 0.8
    assert copy_.note().startswith("answers shared between t007 and zoe (")


def test_unanswered_releases_share_nothing():
    """Caught: a detector that counts the release's own text (headers, docstrings, ``# YOUR CODE HERE``)
    as answers: every trainee who handed in nothing would look like every other."""
    subs = {f"s{k:02d}": release_nb() for k in range(40)}
    subs["late"] = handed_in({gid: src for gid, src in solution_answers().items() if gid == "histogram_atomic"})
    assert shared_answers(release_nb(), subs) == []
    assert shared_answers(release_nb(), subs, source_nb()) == []


def test_stubs_left_in_place_do_not_join_two_different_answers():
    """Caught: a detector that fingerprints the release's own lines when a trainee keeps them (the stub
    ``raise NotImplementedError()`` above a short answer of their own): the k-grams that run from the stub
    into two different answers would be shared by both, cell after cell."""
    stubs = {gid: src for gid, src in answers_of(release_nb()).items()}
    ana = {gid: f"{src}\n    total = values.sum() + {k}" for k, (gid, src) in enumerate(stubs.items())}
    ben = {gid: f"{src}\n    result = np.zeros({k}, np.int32)" for k, (gid, src) in enumerate(stubs.items())}
    subs = {"ana": handed_in(ana), "ben": handed_in(ben)}
    assert shared_answers(release_nb(), subs) == []


def test_a_room_that_writes_the_same_short_canonical_answer_shares_nothing():
    """Caught: a detector without room frequency: 30 trainees who all wrote the natural grid-stride loop
    and the textbook tree reduction (names of their own) would be 435 pairs of copies."""
    canonical = {gid: solution_answers()[gid] for gid in ("histogram_atomic", "block_sum_kernel")}
    subs = {f"s{k:02d}": handed_in({gid: re.sub(r"\b(i|tid|acc)\b", rf"\g<1>{k % 3}", src)
                                    for gid, src in canonical.items()})
            for k in range(30)}
    assert shared_answers(release_nb(), subs) == []
    assert shared_answers(release_nb(), subs, source_nb()) == []  # nor is it a copy of the solution


def test_answers_too_short_to_tell_apart_are_not_reported():
    """Caught: ``min_tokens`` too low: two trainees of a small room who each answered only the one-line
    grid-stride histogram, the same way (the way most would write it), would be called copies."""
    short = solution_answers()["histogram_atomic"]
    subs = {"ana": handed_in({"histogram_atomic": short}), "ben": handed_in({"histogram_atomic": short})}
    subs.update({f"s{k}": release_nb() for k in range(5)})
    assert shared_answers(release_nb(), subs) == []
    assert pairs(shared_answers(release_nb(), subs, min_tokens=20)) == {("ana", "ben")}  # the test can fail


BLOCK_SUM_ATOMIC = '''@cuda.jit
def block_sum_kernel(x, partial):
    """partial[blockIdx.x] = the sum of the elements this block's threads visit (tree reduction)."""
    total = 0.0
    start = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    step = cuda.blockDim.x * cuda.gridDim.x
    while start < x.size:
        total = total + x[start]
        start += step
    cuda.atomic.add(partial, cuda.blockIdx.x, total)
'''

BLOCK_SUM_WARP = '''@cuda.jit
def block_sum_kernel(x, partial):
    """partial[blockIdx.x] = the sum of the elements this block's threads visit (tree reduction)."""
    warp_sums = cuda.shared.array(32, float64)
    lane = cuda.laneid
    warp = cuda.threadIdx.x // 32
    mine = 0.0
    for k in range(cuda.grid(1), len(x), cuda.gridsize(1)):
        mine += x[k]
    offset = 16
    while offset:
        mine += cuda.shfl_down_sync(0xFFFFFFFF, mine, offset)
        offset >>= 1
    if lane == 0:
        warp_sums[warp] = mine
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        block = 0.0
        for w in range((cuda.blockDim.x + 31) // 32):
            block += warp_sums[w]
        partial[cuda.blockIdx.x] = block
'''


def test_two_different_correct_approaches_are_not_reported():
    """Caught: thresholds so low that two trainees who wrote the same exercise two different ways (an
    atomic per thread; warp shuffles), sharing only the idioms any answer has, are called copies; also
    the course's interleaved-tree variant beside a trainee's warp reduction."""
    tree = next(v.source for v in read_right_solutions(ROOT / "tests" / "right_solutions" / f"{LAB}.py")
                if v.cell == "block_sum_kernel")
    subs = {"ana": handed_in({"block_sum_kernel": BLOCK_SUM_ATOMIC}),
            "ben": handed_in({"block_sum_kernel": BLOCK_SUM_WARP}),
            "cho": handed_in({"block_sum_kernel": tree})}
    assert shared_answers(release_nb(), subs) == []


def test_a_copy_of_the_course_solution_is_reported_against_it():
    """Caught: a detector that compares trainees only with each other (a leaked solution, copied by one
    trainee, is then invisible), or that reports the solution against trainees who did not copy it. The
    room wrote its own answers (or none): where many write the canonical answer, the solution is common
    and a copy of it cannot be told from them (grading/README.md, "Answers shared between trainees")."""
    subs = {f"s{k:02d}": release_nb() for k in range(20)}
    subs.update({"ana": handed_in({"block_sum_kernel": BLOCK_SUM_ATOMIC}),
                 "ben": handed_in({"block_sum_kernel": BLOCK_SUM_WARP}),
                 "leak": handed_in({gid: disguised(src, "lk") for gid, src in solution_answers().items()})})
    found = shared_answers(release_nb(), subs, source_nb())
    assert pairs(found) == {("leak", SOLUTION)}, [s.note() for s in found]
    assert found[0].fraction_b >= 0.8 and "the course's solution" in found[0].note()
    assert set(found[0].cells) == set(answer_ids(release_nb()))
    assert shared_answers(release_nb(), subs) == []  # without the solution given, the copier is alone


def test_a_copy_made_of_lines_the_release_already_holds_is_not_a_copy():
    """Caught: counting text the release gives (a course cell pasted into an answer cell, then a line
    of the answer's own header) as the trainees' own."""
    given = next(c["source"] for c in release_nb()["cells"] if "def count_positive_atomic" in c["source"])
    header = next(c["source"] for c in release_nb()["cells"] if "def gpu_sum" in c["source"])
    subs = {name: handed_in({"gpu_sum": header + "\n" + given}) for name in ("ana", "ben")}
    assert shared_answers(release_nb(), subs) == []


def test_hostile_notebooks_neither_raise_nor_take_long(monkeypatch):
    """Caught: a detector that raises on a trainee's malformed file (stopping the whole room's results)
    or that reads a 5 MB cell or 10,000 cells whole (minutes): the tokens it makes are counted, not timed
    (a loaded CI machine is no stopwatch)."""
    from techday.grading import similarity

    made = []
    tokens = similarity._tokens

    def counted(*args, **kw):
        out = tokens(*args, **kw)
        made.append(len(out))
        return out

    monkeypatch.setattr(similarity, "_tokens", counted)
    huge = handed_in({"gpu_sum": "x = 1 + 2\n" * 500_000})
    many = release_nb()
    cell = {"cell_type": "code", "metadata": {"nbgrader": {"solution": True, "grade_id": "gpu_sum"}},
            "source": ["y = [3, 4]\n", "z = y * 5\n"], "outputs": []}
    many["cells"] += [copy.deepcopy(cell) for _ in range(10_000)]
    broken = handed_in({"gpu_sum": "def f(:\n    return ((\n  'unterminated\n\tx = {",
                        "histogram_atomic": "\x00\udcff"})
    odd = release_nb()
    odd["cells"] += [{"cell_type": "code"}, {"metadata": None, "source": 3}, 7, {"metadata": {"nbgrader": []}},
                     {"metadata": {"nbgrader": {"solution": True, "grade_id": 5}}, "source": "a = 1"},
                     {"metadata": {"nbgrader": {"solution": True, "grade_id": "x"}}, "source": ["a", 1]}]
    subs = {"huge": huge, "many": many, "broken": broken, "odd": odd, "none": None, "list": [], "text": "{}"}
    subs.update({"twin": copy.deepcopy(huge)})
    found = shared_answers(release_nb(), subs, source_nb())
    release_cells = len(release_nb()["cells"])
    assert sum(made) <= (len(subs) + 1 + release_cells) * similarity.MAX_TOKENS, sum(made)
    assert pairs(found) <= {("huge", "twin"), ("many", "twin"), ("huge", "many")}
    assert shared_answers({}, {"a": {}, "b": {"cells": "no"}}, {"cells": None}) == []


def test_output_is_the_same_whatever_the_order():
    """Caught: output that depends on dict order or on Python's salted ``hash`` (two runs of the same
    room listing the same pairs differently)."""
    subs = room(20, seed=3)
    for donor, copier in (("t001", "x1"), ("t002", "x2"), ("t003", "x3")):
        subs[copier] = handed_in({gid: disguised(src, copier) for gid, src in answers_of(subs[donor]).items()})
    first = shared_answers(release_nb(), subs, source_nb())
    again = shared_answers(release_nb(), dict(reversed(list(subs.items()))), source_nb())
    assert first == again and len(first) == 3
    assert first == sorted(first, key=lambda s: (-s.tokens, s.a, s.b))


def test_three_friends_sharing_one_notebook_in_a_room_of_30_are_reported():
    """A copy ring, the realistic case in a workshop room: three trainees hand in one notebook (two
    disguised copies of the third's) among 27 honest trainees, the course's solution given. Caught: a
    common rule whose floor is 2 holders (``max(2, 5 %)``, the old default): in any room under 60 the
    ring's text is held by 3 and dropped as common, so the ring is missed or partly reported (here only
    the two copies' pair, by a swap they happen to share); and a false pair among the 27 honest trainees."""
    subs = room(28, seed="ring")
    for copier in ("x1", "x2"):
        subs[copier] = handed_in({gid: disguised(src, copier) for gid, src in answers_of(subs["t004"]).items()})
    found = shared_answers(release_nb(), subs, source_nb())
    assert pairs(found) == {("t004", "x1"), ("t004", "x2"), ("x1", "x2")}, [s.note() for s in found]


@pytest.mark.parametrize("lab", [LAB, "10-dl-first-network"])
def test_a_room_of_300_finds_exactly_the_planted_copies(lab):
    """The measurement behind the defaults (grading/README.md, "Answers shared between trainees"): 300
    honest trainees of a real lab plus 3 planted copies, with the course's solution given. Caught: false
    pairs among honest trainees (thresholds too low), a planted copy missed (too high). The time is
    printed, not asserted (a shared 2-core CI machine is no stopwatch; the README quotes it measured)."""
    subs = room(297, seed=lab, lab=lab)
    for k, (donor, copier) in enumerate((("t010", "x1"), ("t150", "x2"), ("t290", "x3"))):
        subs[copier] = handed_in({gid: disguised(src, f"c{k}") for gid, src in answers_of(subs[donor]).items()}, lab)
    start = time.perf_counter()
    found = shared_answers(release_nb(lab), subs, source_nb(lab))
    took = time.perf_counter() - start
    print(f"{lab}: {len(subs)} trainees, {took:.2f} s; " + "; ".join(s.note() for s in found))
    assert pairs(found) == {("t010", "x1"), ("t150", "x2"), ("t290", "x3")}, [s.note() for s in found]
    assert MIN_FRACTION <= min(max(s.fraction_a, s.fraction_b) for s in found)


def test_a_copy_moved_into_a_cell_of_ones_own_is_reported():
    """Wrong answer caught: a copier who pastes the neighbour's answers into new cells (no nbgrader
    metadata) and leaves each answer cell a one-line call was compared on the calls alone, and missed."""
    subs = room(30, seed="own-cells")
    donor = answers_of(subs["t004"])
    copied = handed_in({gid: f"pass  # see below\n" for gid in donor})
    for gid, src in donor.items():
        copied["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                "source": disguised(src, "own")})
    subs["x1"] = copied
    found = shared_answers(release_nb(), subs, source_nb())
    assert ("t004", "x1") in pairs(found), [s.note() for s in found]
    (shared,) = [s for s in found if (s.a, s.b) == ("t004", "x1")]
    assert "a cell of their own" in shared.cells


@pytest.mark.parametrize("meta", [
    {"grade_id": "my-notes", "solution": False, "grade": False, "locked": False, "schema_version": 3},
    {"grade_id": "my-notes", "solution": False, "grade": True, "locked": False, "points": 0, "schema_version": 3},
    {"grade_id": "my-notes", "solution": False, "grade": False, "locked": True, "schema_version": 3},
])
def test_a_copy_in_a_cell_whose_own_metadata_says_it_is_no_answer_is_reported(meta):
    """Wrong answer caught: the trainee's own metadata decided which cells were compared. A copier who
    pasted the neighbour's answers into a new cell marked with a made-up ``grade_id`` (nbgrader ignores
    the cell's grading and runs it; the checks only note "unknown graded cell") and left each answer cell
    a one-line call was compared on the calls alone: no finding. The release decides what is the
    course's, never the submission."""
    subs = room(30, seed="meta-cells")
    donor = answers_of(subs["t004"])
    copied = handed_in({gid: "pass  # see below\n" for gid in donor})
    for gid, src in donor.items():
        copied["cells"].append({"cell_type": "code", "execution_count": None, "outputs": [],
                                "metadata": {"nbgrader": dict(meta)}, "source": disguised(src, "meta")})
    subs["x1"] = copied
    found = shared_answers(release_nb(), subs, source_nb())
    assert ("t004", "x1") in pairs(found), [s.note() for s in found]


def test_a_finding_names_only_the_releases_cells():
    """Wrong answer caught: a finding named the cells by the ``grade_id`` each notebook claims, and that
    name goes into the neighbour's hold line, the review table and passfail.csv: a copier's answer cell
    renamed ``x\\nz-assess: cleared by Lee`` put a line break and a fake decision into the honest
    trainee's hold. Any id the release does not have is named as a cell of their own."""
    subs = room(30, seed="named")
    copied = handed_in({gid: disguised(src, "n") for gid, src in answers_of(subs["t004"]).items()})
    for cell in copied["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            cell["metadata"]["nbgrader"]["grade_id"] += "\nz-assess: cleared by Lee"
    subs["x1"] = copied
    found = [s for s in shared_answers(release_nb(), subs, source_nb()) if (s.a, s.b) == ("t004", "x1")]
    assert found, "the copy is still reported"
    assert set(found[0].cells) <= set(answer_ids(release_nb())) | {"a cell of their own"}, found[0].cells


def respelled(source: str) -> str:
    """Every number written another way, its value kept: integers in hex (``256`` -> ``0x100``), decimals
    with one more zero (``1.0`` -> ``1.00``): a find-and-replace away."""
    def one(m: re.Match) -> str:
        text = m.group(0)
        return hex(int(text)) if text.isdigit() else repr(float(text)) + "0"
    return re.sub(r"(?<![\w.])\d+(\.\d*)?(?![\w.])", one, source)


@pytest.mark.parametrize("lab", [LAB, "10-dl-first-network"])
def test_a_copy_with_its_numbers_respelled_is_reported(lab):
    """Wrong answer caught: numbers were fingerprinted as written, so three disguised copies with every
    number respelled (``0x2`` for ``2``, ``0.00`` for ``0.0``; the same program) shared nothing rare
    with their donors: none reported, in either lab. Numbers are compared by value."""
    subs = room(40, seed="respelled", lab=lab)
    for donor, copier in (("t004", "x1"), ("t010", "x2"), ("t020", "x3")):
        subs[copier] = handed_in({gid: respelled(disguised(src, copier))
                                  for gid, src in answers_of(subs[donor]).items()}, lab)
    found = shared_answers(release_nb(lab), subs, source_nb(lab))
    assert pairs(found) == {("t004", "x1"), ("t010", "x2"), ("t020", "x3")}, [s.note() for s in found]


def test_a_copy_behind_a_long_line_of_junk_is_reported():
    """Wrong answer caught: only a participant's first 20,000 tokens were read, so one line of junk at
    the top of the notebook (``_ = [0, 0, ...]``, 20 KB, a gradable hand-in) used the whole budget and
    the disguised copy after it was never read: no finding. Every notebook the checks accept
    (``MAX_SOURCE_CHARS`` of cell text in at most ``MAX_CELLS`` cells) is read whole."""
    from techday.grading import checks, similarity

    subs = room(30, seed="junk")
    copied = handed_in({gid: disguised(src, "j") for gid, src in answers_of(subs["t004"]).items()})
    copied["cells"].insert(0, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                               "source": "_ = [" + "0, " * 20_000 + "]\n"})
    assert checks._too_big(copied) is None  # gradable
    subs["x1"] = copied
    found = shared_answers(release_nb(), subs, source_nb())
    assert ("t004", "x1") in pairs(found), [s.note() for s in found]
    # A token is at least one character, and each cell adds at most one ";" of its own.
    assert similarity.MAX_TOKENS >= checks.MAX_SOURCE_CHARS + checks.MAX_CELLS


# ------------------------------------------------------------------ evasions of one who knows the detector


@pytest.mark.parametrize("lab", [LAB, "10-dl-first-network"])
def test_a_copy_rewritten_to_evade_the_fingerprints_is_reported(lab):
    """Wrong answer caught: builtins called through names of one's own (``ra = range``), ``for`` loops
    written as ``while`` loops, a no-op or dead statement after every line (``x = x``, ``x += 0``,
    ``if False: ...``, ``dead = 0``, a bare ``7``) and every pair of independent assignments swapped broke
    every run of 10 tokens: none of these three copies was reported in either lab (26 of 26 missed in the
    corpus of grading/README.md). Each cell is compared in a canonical form that undoes them."""
    subs = room(40, seed="rewritten", lab=lab)
    for donor, copier in (("t004", "x1"), ("t010", "x2"), ("t020", "x3")):
        subs[copier] = handed_in({gid: rewritten(src, copier) for gid, src in answers_of(subs[donor]).items()}, lab)
    found = shared_answers(release_nb(lab), subs, source_nb(lab))
    assert pairs(found) == {("t004", "x1"), ("t010", "x2"), ("t020", "x3")}, [s.note() for s in found]


def test_a_copy_padded_with_dead_statements_is_reported():
    """Wrong answer caught: a dead or no-op statement after every line (``dead = 0``, ``x = x``,
    ``x += 0``, ``if False: ...``, a bare number) broke the runs of 10 tokens between them: of three such
    copies in a room of 40, the old detector reported one."""
    subs = room(40, seed="padded")
    for donor, copier in (("t004", "x1"), ("t010", "x2"), ("t020", "x3")):
        subs[copier] = handed_in({gid: disguised(padded(src, copier), copier)
                                  for gid, src in answers_of(subs[donor]).items()})
    found = shared_answers(release_nb(), subs, source_nb())
    assert pairs(found) == {("t004", "x1"), ("t010", "x2"), ("t020", "x3")}, [s.note() for s in found]


@pytest.mark.parametrize("lab", [LAB, "10-dl-first-network"])
def test_a_copy_padded_with_computed_dead_statements_is_reported(lab):
    """Wrong answer caught: a dead statement that computes something after every line (``d = a * 3``, a
    chain ``d = a - 2; e = d * d``, ``d = [q * 2 for q in a]``, a dead store to a name the next line binds
    again), nothing reading any of them, broke every run of 10 tokens between the copied lines: of these
    three disguised copies in a room of 40, the detector without a liveness pass reported none, in either
    lab. Assignments whose value nothing reads, and which call nothing, are dropped."""
    subs = room(40, seed="computed-dead", lab=lab)
    for donor, copier in (("t004", "x1"), ("t010", "x2"), ("t020", "x3")):
        subs[copier] = handed_in({gid: disguised(computed_dead(src, copier), copier)
                                  for gid, src in answers_of(subs[donor]).items()}, lab)
    found = shared_answers(release_nb(lab), subs, source_nb(lab))
    assert pairs(found) == {("t004", "x1"), ("t010", "x2"), ("t020", "x3")}, [s.note() for s in found]


@pytest.mark.parametrize("lab", [LAB, "10-dl-first-network"])
def test_two_answers_copied_whole_among_five_are_reported(lab):
    """Part of a notebook copied, the rest written by the copier: two of five answers, disguised, the
    other three the copier's own. Wrong answer caught: the pair was judged on the whole notebook only
    (shared text at least 60 % of the smaller own text), so two answers copied whole were 20 to 40 % and
    never reported (0 of 26 in the corpus). An answer (a cell) almost wholly shared on both sides is a
    finding of its own, and names only those cells."""
    subs = room(40, seed="two-of-five", lab=lab)
    rng = random.Random("two-of-five")
    given = {line.strip() for c in release_nb(lab)["cells"] for line in c["source"].splitlines()}
    options = variants(lab)
    donor = answers_of(subs["t004"])
    copied = sorted(donor)[:2]
    subs["x1"] = handed_in({gid: rewritten(src, "x1") if gid in copied
                            else own_version(rng.choice(options[gid]), rng, given)
                            for gid, src in donor.items()}, lab)
    found = shared_answers(release_nb(lab), subs, source_nb(lab))
    assert pairs(found) == {("t004", "x1")}, [s.note() for s in found]
    assert set(found[0].cells_b) <= set(copied), found[0].note()


@pytest.mark.parametrize("room_size", [20, 30, 60])
def test_a_leaked_solution_handed_in_by_three_is_reported(room_size):
    """A copy ring with the course's solution: three trainees hand in disguised copies of it, in a room
    that writes its own answers. Wrong answer caught: a text held by four participants (the solution and
    three copies) is common in any room under 80 (``max(3, 5 %)``): one pair of the six was reported
    (one copier against the solution) in rooms of 20, 30 and 60. Text held by the same four to six
    participants and no one else, most of each one's answer text, is a ring."""
    subs = {name: nb for name, nb in room(room_size, seed="leak-ring").items()}
    subs = {name: handed_in({gid: src for gid, src in answers_of(nb).items()
                             if gid not in ("block_sum_kernel", "gpu_sum")}) for name, nb in subs.items()}
    subs.update({"ana": handed_in({"block_sum_kernel": BLOCK_SUM_ATOMIC}),
                 "ben": handed_in({"block_sum_kernel": BLOCK_SUM_WARP})})
    leaked = {gid: solution_answers()[gid] for gid in ("block_sum_kernel", "gpu_sum")}
    for copier in ("y1", "y2", "y3"):
        subs[copier] = handed_in({gid: disguised(src, copier) for gid, src in leaked.items()})
    found = shared_answers(release_nb(), subs, source_nb())
    ring = ("y1", "y2", "y3", SOLUTION)
    assert pairs(found) == {(a, b) for a, b in combinations(ring, 2)}, [s.note() for s in found]
    # What the common rule alone missed says who holds the text (the pairs it reported say it too).
    assert any(s.note().endswith("the same text held by 4: y1, y2, y3, the course's solution)") for s in found), \
        [s.note() for s in found]


@pytest.mark.parametrize("room_size", [20, 30, 60])
def test_four_friends_handing_in_one_notebook_are_reported(room_size):
    """A ring of four: a trainee and three disguised copies of their notebook among honest trainees, the
    course's solution given. Wrong answer caught: the common rule dropped the ring's text (held by 4, over
    ``max(3, 5 %)`` in a room under 80): 7 of its 36 pairs were reported in rooms of 20, 30 and 60."""
    subs = room(room_size, seed="ring-of-four")
    for copier in ("y1", "y2", "y3"):
        subs[copier] = handed_in({gid: disguised(src, copier) for gid, src in answers_of(subs["t001"]).items()})
    found = shared_answers(release_nb(), subs, source_nb())
    assert pairs(found) == {(a, b) for a, b in combinations(("t001", "y1", "y2", "y3"), 2)}, \
        [s.note() for s in found]


def test_a_huge_notebook_of_small_cells_is_not_all_read_through_ast(monkeypatch):
    """Wrong answer caught: every cell up to ``AST_MAX_CHARS`` was parsed and rewritten, however many,
    so a notebook the checks reject (2 MB of small cells that compute nothing, no token counted against
    ``MAX_TOKENS``) was read through :mod:`ast` whole, several times a gradable notebook's cost. The
    characters read so are counted, not timed."""
    from techday.grading import similarity

    parsed = []
    canonical = similarity._canonical

    def counted(text, aliases, keep=frozenset()):
        parsed.append(len(text))
        return canonical(text, aliases, keep)

    monkeypatch.setattr(similarity, "_canonical", counted)
    nb = release_nb()
    nb["cells"] += [{"cell_type": "code", "metadata": {}, "outputs": [], "source": "pass  # " + "n" * 990 + "\n"}
                    for _ in range(2_000)]
    shared_answers(release_nb(), {"a": nb})
    release = sum(len(c["source"]) for c in release_nb()["cells"])
    # the room is read in two canonical forms (dead statements dropped and kept): twice the bound of one
    assert sum(parsed) <= 2 * (release + similarity.MAX_TOKENS + similarity.AST_MAX_CHARS), sum(parsed)


def _same_variant_room(gid: str, pick: int, writers: int, seed: str) -> dict[str, dict]:
    """A room of 20 honest trainees (:func:`room`) in which exactly ``writers`` of them answer ``gid``
    with the course's variant ``pick`` (each their own way) and no one else does."""
    given = {line.strip() for c in release_nb()["cells"] for line in c["source"].splitlines()}
    options = variants()
    subs = room(20, seed=seed)
    for k, (name, nb) in enumerate(sorted(subs.items())):
        rng = random.Random(f"{seed}-{name}")
        others = [v for i, v in enumerate(options[gid]) if i != pick]
        mine = answers_of(nb)
        mine[gid] = own_version(options[gid][pick] if k < writers else rng.choice(others), rng, given)
        subs[name] = handed_in(mine)
    return subs


@pytest.mark.parametrize("pick", [1, 2, 3])
def test_two_honest_trainees_who_wrote_the_same_variant_of_one_answer_are_not_reported(pick):
    """Honest pairs stay unreported under the rule for answers copied whole. Caught: a whole-answer rule
    too eager (one-way containment, or ``PART_FRACTION`` at 0.5): two trainees of a room of 20 who are
    the only ones to write one course variant of ``block_sum_kernel``, each with lines of their own,
    share most of that answer's runs and would be called copies."""
    subs = _same_variant_room("block_sum_kernel", pick, 2, seed=f"same-variant-{pick}")
    found = shared_answers(release_nb(), subs, source_nb())
    assert found == [], [s.note() for s in found]


def test_honest_trainees_who_write_the_canonical_answer_are_not_a_ring():
    """Honest trainees stay unreported under the ring rule. Caught: a ring rule that takes any text held
    by the same four to six participants (``RING_MIN_TOKENS`` at 20 and ``RING_FRACTION`` at 0; either
    bound alone keeps this room clean): five trainees of a room of 20 who all write the course's own
    ``block_sum_kernel`` (each their own way) hold runs of it with the course's solution, up to six
    holders, and 31 pairs of them would be reported."""
    subs = _same_variant_room("block_sum_kernel", 0, 5, seed="canonical-five")
    found = shared_answers(release_nb(), subs, source_nb())
    assert found == [], [s.note() for s in found]


def test_a_rewritten_copy_with_an_ipython_magic_in_each_cell_is_reported():
    """Wrong answer caught: a cell with an IPython line (``%timeit``, ``!nvidia-smi``: the notebook runs
    it) is not Python, so it was tokenized as written, and one such line per cell undid the canonical
    form: the rewritten copies below were missed. Magic and shell lines are left out of what is parsed."""
    subs = room(40, seed="magic")
    for donor, copier in (("t004", "x1"), ("t010", "x2"), ("t020", "x3")):
        subs[copier] = handed_in({gid: "%load_ext autoreload\n" + rewritten(src, copier) + "\n!nvidia-smi\n"
                                  for gid, src in answers_of(subs[donor]).items()})
    found = shared_answers(release_nb(), subs, source_nb())
    assert pairs(found) == {("t004", "x1"), ("t010", "x2"), ("t020", "x3")}, [s.note() for s in found]


# ------------------------------------------------------------------ the liveness pass of the canonical form


def _canon(source: str, keep=()) -> str:
    from techday.grading import similarity

    return similarity._canonical(source, {}, set(keep)) if keep else similarity._canonical(source, {})


def test_dead_computed_statements_are_dropped_from_the_canonical_form():
    """Wrong answer caught: dead statements that compute something stayed in the canonical form and broke
    the runs of 10 tokens between the copied lines: a product nothing reads, a chain of two (calling only
    builtins that compute: ``abs``, ``len``, ``min`` of two, ``float``), a dead store
    to a name the next line binds again, in a loop a chain read only by another dead statement, a
    comprehension and an item read nothing reads, an ``if`` whose only statement is dead, an f-string
    nothing reads. The padded answer's canonical form is the plain answer's."""
    plain = ("def f(x, out):\n    total = 0.0\n    for i in range(x.size):\n        total += x[i]\n"
             "    out[0] = total\n")
    padded_ = ("def f(x, out):\n    d = x * 3\n    total = x[0] * 2\n    total = 0.0\n    e = d + abs(x)\n"
               "    w = len(x) * 2\n    v = min(w, 3) + float(x.size)\n"
               "    for i in range(x.size):\n        k = i * 2\n        m = [q * 2 for q in x]\n"
               "        total += x[i]\n        n = k + m[0]\n        if i > 3:\n            p = total * i\n"
               "    out[0] = total\n    s = f'{total}'\n")
    assert _canon(padded_) == _canon(plain), _canon(padded_)


@pytest.mark.parametrize("source, kept", [
    ("def f(a):\n    t = g(a)\n    return a\n", "t = g(a)"),  # a call may print or write memory
    ("def f(a, i):\n    t = cuda.atomic.add(a, i, 1)\n", "cuda.atomic.add"),
    ("def f(a, i):\n    a[i] += 1\n", "a[i] += 1"),  # a write to memory, never a dead name
    ("def f(a, i):\n    t = a[i] * 2\n    a[i] = t\n", "t = a[i] * 2"),
    ("def f(n, out):\n    p = 0\n    for i in range(n):\n        out[i] = p\n        p = i * 2\n", "p = i * 2"),
    ("def f(n, out):\n    p = 0\n    for i in range(n):\n        out[i] = p\n        p = i * 2\n", "p = 0"),
    ("def f(a):\n    x, y = (a, a * 2)\n    return y\n", "x, y = (a, a * 2)"),  # one of a tuple read
    ("def f(a):\n    global g\n    g = a * 2\n", "g = a * 2"),
    ("def f(a):\n    v = 0\n\n    def h():\n        nonlocal v\n        v = a * 2\n    h()\n    return v\n",
     "v = a * 2"),
    ("def f(a):\n\n    def h():\n        return x\n    x = a * 2\n    return h()\n", "x = a * 2"),  # a closure
    ("def f(a):\n    h = lambda: x\n    x = a * 2\n    return h()\n", "x = a * 2"),
    ("def f(a):\n    x = a * 2\n    del x\n", "x = a * 2"),
    ("def f(a):\n    x = (y := (a * 2))\n    return y\n", "y := "),  # a walrus binds a name
    ("def f(a):\n    x = a * 2\n    return f'{x}'\n", "x = a * 2"),
    ("def f(a):\n    x = a * 2\n    return locals()\n", "x = a * 2"),
    ("def f(a):\n    for i in a:\n        x = i * 2\n        if i:\n            break\n    return x\n", "x = i * 2"),
    ("def f(a):\n    try:\n        x = a * 2\n        x = a[0]\n    except IndexError:\n        return x\n",
     "x = a * 2"),  # the handler reads what the ``try`` bound before it raised
    ("def f(a):\n    t = a * 2\n    t = t + 1\n    return t\n", "t = a * 2"),
    ("class A:\n    k = 3 * 4\n", "k = 3 * 4"),  # a class's names are its attributes
    ("def f(a):\n    while a:\n        a = a * 2\n    return 0\n", "a *= 2"),  # the loop's test reads it
    ("def f(a):\n    t = next(a)\n    return a\n", "t = next(a)"),  # advances an iterator
    ("def f(a):\n    t = min(a)\n    return a\n", "t = min(a)"),  # of one iterable: consumes it
    ("def abs(v):\n    return g(v)\n\ndef f(a):\n    t = abs(a)\n    return a\n", "t = abs(a)"),  # not the builtin
    ("def f(a):\n    t = abs(a, key=g)\n    return a\n", "t = abs(a, key=g)"),
])
def test_statements_whose_results_are_read_stay(source, kept):
    """Wrong answer caught: a liveness pass that drops a statement whose result is read (or that does
    more than bind a name): a call's side effect, a write to memory (``a[i] += 1``), a value the next
    iteration reads, one name of a tuple, a ``global``/``nonlocal``, a closure's or lambda's read, a
    ``del``, a walrus, an f-string, ``locals()``, a read after ``break``, an exception handler's read.
    Dropping them makes different programs one text, and an honest trainee's own live lines vanish (two
    honest trainees of one course variant then look alike)."""
    assert kept in _canon(source), _canon(source)


def test_a_module_level_name_another_cell_or_the_release_reads_stays():
    """Wrong answer caught: module-level liveness judged on one cell alone: ``scale = n * 2`` read by the
    trainee's next cell (or a name a test cell of the release reads) was dropped as dead, though the
    program reads it. A markdown cell that names a dead name does not keep it."""
    from techday.grading import similarity

    cells = [("a", False, "scale = n * 2\nunused = n * 3\nchecked = n * 4\n"), ("b", False, "y = x * scale\n"),
             ("c", True, "unused is named here")]
    elsewhere = similarity._read_elsewhere(cells, frozenset({"checked"}))
    canon = _canon(cells[0][2], elsewhere[0])
    assert "scale = n * 2" in canon and "checked = n * 4" in canon, canon
    assert "unused" not in canon, canon


def test_the_liveness_pass_is_bounded_on_hostile_cells(monkeypatch):
    """Wrong answer caught: a liveness pass run to a true fixed point is quadratic on a chain of dead
    temporaries written backwards in a loop (a name read anywhere in a loop is live in all of it, so
    each pass frees one link: 1,900 passes of a 47,000-character cell), and one that walks a nested
    block again at each level of nesting is quadratic in the depth; recursion past Python's limit on a
    cell nested 95 deep would leave the cell uncanonical. Statements visited are counted, not timed:
    at most :data:`DEAD_ROUNDS` visits of each statement, and the deep cells are read in canonical form."""
    from techday.grading import similarity

    visits = []
    stmt = similarity._Facts._stmt

    def counted(self, node, entry):
        visits.append(1)
        return stmt(self, node, entry)

    monkeypatch.setattr(similarity._Facts, "_stmt", counted)
    n = 1_900
    chain = ("def f(a):\n    for i in a:\n" + "".join(f"        t{k} = t{k + 1} * 2\n" for k in range(n))
             + f"        t{n} = i\n")
    ifs = "def f(a):\n" + "".join(" " * (4 * (d + 1)) + f"if a > {d}:\n" for d in range(95)) + \
        "".join(" " * 384 + f"x{k} = a * {k}\n" for k in range(60)) + " " * 384 + "a[0] = 1\n"
    defs = "".join(" " * (4 * d) + f"def f{d}(a{d}):\n" for d in range(90)) + \
        "".join(" " * 360 + f"x{k} = a0 * {k}\n" for k in range(60)) + " " * 360 + "return 1\n"
    for source in (chain, ifs, defs):
        assert len(source) <= similarity.AST_MAX_CHARS
        statements = sum(isinstance(node, ast.stmt) for node in ast.walk(ast.parse(source)))
        visits.clear()
        canon = similarity._canonical(source, {})
        assert canon is not None, "read in canonical form, no RecursionError"
        assert len(visits) <= similarity.DEAD_ROUNDS * statements, (len(visits), statements)
    assert "x0 = " not in canon and "x59 = " not in canon


def test_a_throwaway_name_renamed_hides_nothing():
    """Wrong answer caught: ``_`` was kept as written (a soft keyword), so a copy that renamed ``for _ in
    range(epochs)`` to ``for k in range(epochs)`` (what ``disguised`` does to every local name) broke a
    run of 10 tokens: in lab 10, with the donor's dead lines dropped, that run was the 10 % that kept a
    copied ``fit`` answer under ``PART_FRACTION``. ``_`` is a name like any other."""
    from techday.grading import similarity

    a = similarity._tokens("for _ in range(n):\n    total += x[_]\n", False, 100)
    b = similarity._tokens("for k in range(n):\n    total += x[k]\n", False, 100)
    assert a == b, (a, b)


def test_a_dead_statement_does_not_order_the_live_ones():
    """Wrong answer caught: runs of independent statements were put in their one order before the dead
    statements were dropped, so a dead store placed to depend on one line and be overwritten by another
    (``y = b * 2``, then ``x = y * 3`` never read, then ``x = a + 1``) forced ``y`` before ``x``; dropped
    afterwards, it left the copy's lines in another order than the donor's (``x = a + 1`` first), which
    breaks the runs the order was meant to keep. A block that lost dead statements is put in order again."""
    plain = "def f(a, b, out):\n    x = a + 1\n    y = b * 2\n    out[0] = x - y\n"
    forced = "def f(a, b, out):\n    y = b * 2\n    x = y * 3\n    x = a + 1\n    out[0] = x - y\n"
    assert _canon(forced) == _canon(plain), _canon(forced)
