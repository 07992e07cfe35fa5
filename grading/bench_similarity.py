"""Recall and false reports of the shared-answer check (techday/grading/similarity.py), on generated rooms:

    python grading/bench_similarity.py [--labs 03-atomics-and-reductions,10-dl-first-network]
                                       [--sizes 20,30,60,150,300] [--verbose]

Each room is written by the test module's room builder (``tests/unit/test_similarity.py``: the course's variants
of each answer, each written the trainee's own way). Into each, one copy per evasion class is planted, each from
another donor: the answers rewritten (builtins under own names, independent statements swapped, ``for`` loops as
``while``, dead statements, all four at once, dead statements that compute something), two or three of five answers copied, every answer copied with own
lines added. Then rings: the course's solution leaked to 3 or 4 trainees of a room that writes only the other right
variants, and one trainee's notebook copied by 3 or 4 others. Prints, per class, the copies reported of those planted,
the honest pairs reported per room size, and the time a room of 300 takes. A measurement, not a test: the figures
in grading/README.md ("Answers shared between trainees") come from it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from techday.grading import similarity as sim  # noqa: E402
from tests.unit.test_similarity import (aliased, answers_of, computed_dead, disguised, handed_in,  # noqa: E402
                                        own_version, padded, release_nb, room, solution_answers, source_nb, swapped,
                                        variants, whiled)


def _safe(rewrite, source: str) -> str:
    try:
        return rewrite(source)
    except SyntaxError:  # a cell the rewriters cannot parse is copied as it is
        return source


CLASSES = {
    "2-alias": lambda s, k: disguised(_safe(lambda x: aliased(x, k), s), k),
    "2-swap": lambda s, k: disguised(_safe(swapped, s), k),
    "2-pad": lambda s, k: disguised(_safe(lambda x: padded(x, k), s), k),
    "2-loop": lambda s, k: disguised(_safe(whiled, s), k),
    "2-all": lambda s, k: disguised(_safe(lambda x: padded(aliased(whiled(swapped(x)), k), k), s), k),
    "2-computed": lambda s, k: disguised(_safe(lambda x: computed_dead(x, k), s), k),
}


def planted(lab: str, subs: dict, rng: random.Random, given: set[str]) -> dict[str, tuple[str, str]]:
    """Plant one copy of each class into ``subs``, each from another donor: {copier: (donor, class)}."""
    out = {}
    donors = iter(sorted(subs)[i] for i in range(0, len(subs), 2))
    for cls, rewrite in CLASSES.items():
        donor, copier = next(donors), f"x{cls}"
        subs[copier] = handed_in({g: rewrite(s, cls.replace("-", "")) for g, s in answers_of(subs[donor]).items()}, lab)
        out[copier] = (donor, cls)
    options = variants(lab)
    for n_copied in (2, 3):
        donor, copier = next(donors), f"x1-part{n_copied}"
        answers = answers_of(subs[donor])
        gids = sorted(answers)
        rng.shuffle(gids)
        mine = {g: disguised(answers[g], copier.replace("-", "")) for g in gids[:n_copied]}
        mine.update({g: own_version(rng.choice(options[g]), rng, given) for g in gids[n_copied:]})
        subs[copier] = handed_in(mine, lab)
        out[copier] = (donor, f"1-part{n_copied}of{len(gids)}")
    donor = next(donors)
    subs["x1-extended"] = handed_in({g: own_version(disguised(s, "ext"), rng, given)
                                     for g, s in answers_of(subs[donor]).items()}, lab)
    out["x1-extended"] = (donor, "1-extended")
    return out


def honest_room(n: int, seed: str, lab: str) -> dict:
    """As ``room``, with no trainee writing the course's solution or a wrong variant of it (those are mostly the
    solution with a bug): the right variants only, each written the trainee's own way."""
    from techday.validate.variants import read_right_solutions

    given = {line.strip() for c in release_nb(lab)["cells"] for line in c["source"].splitlines()}
    options: dict[str, list[str]] = {}
    for v in read_right_solutions(ROOT / "tests" / "right_solutions" / f"{lab}.py"):
        options.setdefault(v.cell, []).append(v.source)
    out = {}
    for k in range(n):
        rng = random.Random(f"{seed}-{k}")
        out[f"t{k:03d}"] = handed_in({g: own_version(rng.choice(srcs), rng, given)
                                      for g, srcs in sorted(options.items())}, lab)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labs", default="03-atomics-and-reductions,10-dl-first-network")
    ap.add_argument("--sizes", default="20,30,60,150,300", help="room sizes (3 seeds each under 300, 1 at 300)")
    ap.add_argument("--verbose", action="store_true", help="print each honest pair reported")
    args = ap.parse_args(argv)
    recall, total, honest, rooms = Counter(), Counter(), Counter(), Counter()
    times = []
    for lab in args.labs.split(","):
        given = {line.strip() for c in release_nb(lab)["cells"] for line in c["source"].splitlines()}
        for n in (int(x) for x in args.sizes.split(",")):
            for seed in range(3 if n < 300 else 1):
                subs = room(n, seed=f"m{seed}", lab=lab)
                plan = planted(lab, subs, random.Random(f"m{lab}{n}{seed}"), given)
                t = time.perf_counter()
                found = sim.shared_answers(release_nb(lab), subs, source_nb(lab))
                if n >= 300:
                    times.append((lab, n, time.perf_counter() - t))
                got = {(s.a, s.b) for s in found}
                for copier, (donor, cls) in plan.items():
                    total[cls] += 1
                    recall[cls] += (min(copier, donor), max(copier, donor)) in got
                wrong = [p for p in got if not (p[0].startswith("x") or p[1].startswith("x"))]
                honest[n] += len(wrong)
                rooms[n] += 1
                for kind, copies in (("solution", 3), ("solution", 4), ("notebook", 3), ("notebook", 4)):
                    subs2 = honest_room(n, f"r{seed}", lab) if kind == "solution" else room(n, seed=f"r{seed}", lab=lab)
                    source = solution_answers(lab) if kind == "solution" else answers_of(subs2["t001"])
                    members = [sim.SOLUTION] if kind == "solution" else ["t001"]
                    for k in range(copies):
                        subs2[f"y{k}"] = handed_in({g: disguised(s, f"y{k}") for g, s in source.items()}, lab)
                        members.append(f"y{k}")
                    got2 = {(s.a, s.b) for s in sim.shared_answers(release_nb(lab), subs2, source_nb(lab))}
                    want = {tuple(sorted(p, key=lambda m: (m == sim.SOLUTION, m))) for p in combinations(members, 2)}
                    name = f"3-{kind}-and-{copies}-copies-room-{n:03d}"
                    recall[name] += len(want & got2)
                    total[name] += len(want)
                    wrong2 = [p for p in got2 - want if not (p[0].startswith("y") or p[1].startswith("y"))]
                    honest[n] += len(wrong2)
                    rooms[n] += 1
                    wrong += wrong2
                if args.verbose:
                    for p in wrong:
                        print("honest pair reported:", lab, n, seed, p)
            print(f"{lab}: rooms of {n} done", flush=True)
    for cls in sorted(total):
        print(f"{cls}: {recall[cls]}/{total[cls]} reported")
    for n in sorted(honest):
        print(f"honest pairs reported, rooms of {n}: {honest[n]} (in {rooms[n]} rooms)")
    for lab, n, took in times:
        print(f"a room of {n}+ in {lab}: {took:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
