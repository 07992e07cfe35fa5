"""The cheat corpus (tests/fixtures/submissions/cheats.py) on real labs and on the fixture lab, graded
as on the day: `techday grade autograde` in the sandbox, with the referee and the syllabus' per-cell
limits.

Every cheat solves nothing; each must end with 0 points or flagged with a review note (its
certificate held), and all of them are flagged but those whose effect the referee takes away without
a word (``said=False``: a helper named like a builtin is honest code too). Only one route can still earn points: an answer that
returns an object whose ``__eq__`` lies runs the real test and passes it, so the review is what holds
that one. Beside
them an honest solution must earn exactly full marks and not be flagged, and the untouched release
exactly 0. On the fixture lab the same cheats are also graded with ``--no-referee``: most of them
then earn points, which proves that the corpus can fail a grader and that the referee is what stops
them."""

from __future__ import annotations

import json

import nbformat
import pytest

from techday.course.labsrc import write_notebook
from techday.grading.contract import solution_notebook
from tests.conftest import build_lab, techday
from tests.fixtures.submissions.cheats import cheat_bytes, cheats

pytestmark = [pytest.mark.grading, pytest.mark.slow]

REAL_LABS = ["00-gpu-tour", "01-numba-first-steps", "03-atomics-and-reductions", "10-dl-first-network"]


def _corpus(root, lab):
    source = json.loads((root / "source" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((root / "release" / lab / f"{lab}.ipynb").read_text(encoding="utf-8"))
    write_notebook(nbformat.from_dict(solution_notebook(source, release)),
                   root / "submitted" / "honest-solution" / lab / f"{lab}.ipynb")
    (root / "submitted" / "honest-release" / lab).mkdir(parents=True)
    (root / "submitted" / "honest-release" / lab / f"{lab}.ipynb").write_text(json.dumps(release), encoding="utf-8")
    corpus = cheats(release)
    for cheat in corpus:
        folder = root / "submitted" / f"cheat-{cheat.name}" / lab
        folder.mkdir(parents=True)
        (folder / f"{lab}.ipynb").write_bytes(cheat_bytes(release, cheat))
    return corpus


def _grade(lab, build, *extra, env=None, root=()):
    out = techday(*root, "grade", "autograde", lab, "--tier", "cpu", "--scale", "ci", "--workers", "2", *extra,
                  env=env, timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((build / "grading" / lab / "report.json").read_text(encoding="utf-8"))
    return {s["student"]: s for s in report["submissions"]}


def _table(lab, corpus, got) -> tuple[list[str], dict]:
    wrong, counts = [], {"tried": len(corpus), "scored 0": 0, "flagged": 0, "unflagged points": 0}
    for cheat in corpus:
        sub = got[f"cheat-{cheat.name}"]
        zero = sub["score"] == 0
        flagged = sub["status"] == "flagged"
        counts["scored 0"] += zero
        counts["flagged"] += flagged
        held = flagged and any(n.startswith("review: ") for n in sub["notes"])
        counts["unflagged points"] += (not zero and not held)
        print(f"  {cheat.name:<26} {sub['status']:<8} {sub['score']}/{sub['max_score']}  "
              f"{'; '.join(sub['notes'])[:220]}")
        if not zero and not held:
            wrong.append(f"{cheat.name} ({cheat.route}) earned {sub['score']}: {sub['status']} {sub['notes']}")
    return wrong, counts


@pytest.mark.parametrize("lab", REAL_LABS)
def test_cheats_earn_nothing_on_real_labs(lab, bwrap, tmp_path):
    env = {"TECHDAY_BUILD": str(tmp_path)}
    corpus = _corpus(build_lab(lab, tmp_path), lab)
    # The syllabus' own per-cell limits, as a room is graded: on a busy 2-core machine a release's cell
    # that compiles Numba's generator code took over 30 s, so a shorter limit would flag honest work.
    got = _grade(lab, tmp_path, env=env)
    report = json.loads((tmp_path / "grading" / lab / "report.json").read_text(encoding="utf-8"))
    assert report["sandbox"] is True, "graded in the sandbox (test_sandboxed_labs.py leaves these labs to this test)"
    honest, release = got["honest-solution"], got["honest-release"]
    print(f"\n{lab}: honest solution {honest['status']} {honest['score']}/{honest['max_score']}, "
          f"release {release['status']} {release['score']}")
    assert honest["status"] == "graded" and honest["score"] == honest["max_score"] > 0, honest
    assert release["status"] == "graded" and release["score"] == 0, release
    wrong, counts = _table(lab, corpus, got)
    print(f"{lab}: cheat corpus {counts}, honest solution false flags: {int(honest['status'] == 'flagged')}")
    assert not wrong, "\n".join(wrong)
    unsaid = [c.name for c in corpus if c.said and got[f"cheat-{c.name}"]["status"] != "flagged"]
    assert not unsaid, f"every cheat the run can see is flagged (its certificate held): {unsaid}"


def test_cheats_on_the_fixture_lab_and_without_the_referee(bwrap, fixture_course):
    lab = "grade-lab"
    at = ("--root", str(fixture_course))
    out = techday(*at, "build", lab)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    build = fixture_course / "build"
    corpus = _corpus(build / "course", lab)
    got = _grade(lab, build, root=at)
    assert got["honest-solution"]["score"] == 5.0 and got["honest-solution"]["status"] == "graded"
    assert got["honest-release"]["score"] == 0.0 and got["honest-release"]["status"] == "graded"
    wrong, counts = _table(lab, corpus, got)
    print(f"{lab}: cheat corpus {counts}")
    assert not wrong, "\n".join(wrong)

    # The same corpus with the tests run as plain cells (the kernel's word): cheats earn points.
    (fixture_course / "build" / "grading" / lab / "state.json").unlink()
    plain = _grade(lab, build, "--no-referee", root=at)
    earned = {c.name: plain[f"cheat-{c.name}"]["score"] for c in corpus if plain[f"cheat-{c.name}"]["score"]}
    print(f"without the referee, {len(earned)} of {len(corpus)} cheats earn points: {earned}")
    assert plain["honest-solution"]["score"] == 5.0
    # Those that silence whole cells earn everything even against a release whose answers raise;
    # patched helpers need an answer that runs (it fools only the comparison).
    for route in ("transformer-via-strings", "ast-transformer", "wrap-run-cell", "custom-exc-and-reply"):
        assert earned.get(route), f"{route} should earn points when the kernel's word is trusted: {plain[f'cheat-{route}']}"
