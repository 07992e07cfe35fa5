"""A person's decision on one trainee's held labs (techday/grading/decisions.py, ``techday grade review``):
a clearance lifts exactly the holds the person saw on exactly that notebook, a refusal withholds the
certificate whatever ``--issue-held`` says and withdraws one already issued, and a decisions file that
cannot be read stops ``results`` before anything is written. Gradebooks are written with nbgrader's API
(tests/unit/test_certificates.py's fixtures); no notebook runs."""

from __future__ import annotations

import json

import pytest

from techday.cli.main import main
from techday.grading.decisions import Decisions
from techday.grading.results import ResultsStopped, results
from tests.unit.test_certificates import (  # noqa: F401 (fixtures)
    NOTEBOOK,
    empty_gradebook,
    gradebook,
    hand_in,
    make_course,
    passing,
    rows_of,
    run,
)


@pytest.fixture
def held_room(make_course):
    """Three trainees who all pass: ``clean``; ``honest`` and ``cheat``, each with the assessment flagged."""
    course, root, out = make_course()
    gradebook(root, course.id, passing("clean", "honest", "cheat"))
    for student in ("clean", "honest", "cheat"):
        hand_in(root, out, student, "a-lab", NOTEBOOK + " " + student, status="graded")
    hand_in(root, out, "clean", "z-assess", NOTEBOOK + " clean", status="graded")
    hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest", status="flagged",
            notes=("review: uses sys",))
    hand_in(root, out, "cheat", "z-assess", NOTEBOOK + " cheat", status="flagged",
            notes=("review: rebinds a test helper",))
    return course, root, out


def review(course, *argv: str) -> int:
    return main(["--root", str(course.root), "grade", "review", *argv])


def test_one_trainee_cleared_and_one_refused_each_get_their_own_answer(held_room, capsys):
    """``--issue-held`` was the only way to issue a held certificate, all of them at once: the cheat's
    with the honest trainee's. Catches a clearance that lifts nothing, or one that lifts another
    trainee's hold, and a refusal that ``--issue-held`` overrides."""
    course, root, out = held_room
    run(course, root, out)
    rows = rows_of(out)
    assert rows["honest"]["certificate"].startswith("held") and rows["cheat"]["certificate"].startswith("held")

    assert review(course) == 0
    listed = capsys.readouterr().out
    assert "review: uses sys" in listed and "review: rebinds a test helper" in listed and "clean" not in listed
    assert "submitted/cheat/z-assess/z-assess.ipynb" in listed  # the notebook to open

    assert review(course, "honest", "--clear", "--by", "Lee", "--reason", "sys only to read sys.version") == 0
    assert review(course, "cheat", "--refuse", "--by", "Lee", "--reason", "patched the test helper") == 0
    run(course, root, out)
    rows = rows_of(out)
    assert rows["honest"]["certificate"] == "yes" and rows["honest"]["code"], rows["honest"]
    assert "cleared by Lee" in rows["honest"]["review"] and "sys only to read" in rows["honest"]["review"]
    assert rows["cheat"]["certificate"] == "refused on review" and rows["cheat"]["code"] == ""
    assert "refused by Lee" in rows["cheat"]["review"]
    assert rows["clean"]["certificate"] == "yes"

    run(course, root, out, issue_held=True)  # issues what is held; a refusal is not a hold
    rows = rows_of(out)
    assert rows["cheat"]["certificate"] == "refused on review" and rows["cheat"]["code"] == ""
    assert not (out / "certificates" / "acc" / "cheat.pdf").exists()
    assert (out / "certificates" / "acc" / "honest.pdf").is_file()


def test_a_clearance_lapses_when_the_notebook_or_its_holds_change(held_room):
    """A person cleared one notebook with one flag. Catches a clearance that follows the trainee rather
    than the file: a notebook handed in after the decision (graded, flagged for something else) must be
    held again, and so must the same notebook with a hold nobody saw."""
    course, root, out = held_room
    decisions = Decisions.load(out)
    sha = __import__("hashlib").sha256((NOTEBOOK + " honest").encode()).hexdigest()
    decisions.record("honest", "z-assess", "clear", sha, ["z-assess: flagged: review: uses sys"], "Lee", "fine")
    decisions.save()
    run(course, root, out)
    assert rows_of(out)["honest"]["certificate"] == "yes"

    # The same notebook, flagged again with one more note nobody read.
    hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest", status="flagged",
            notes=("review: uses sys", "review: rebinds a test helper"))
    run(course, root, out)
    row = rows_of(out)["honest"]
    assert row["certificate"].startswith("held") and "lapsed" in row["review"], row

    # Another notebook with the very flag that was cleared.
    hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest, edited", status="flagged",
            notes=("review: uses sys",))
    run(course, root, out)
    row = rows_of(out)["honest"]
    assert row["certificate"].startswith("held") and "lapsed" in row["review"], row


def test_a_refusal_withdraws_a_certificate_already_issued(held_room, capsys):
    """Issued with ``--issue-held``, then refused on a closer look: the code must stop verifying.
    Catches a refusal that only stops new certificates (the register kept it as issued)."""
    course, root, out = held_room
    run(course, root, out, issue_held=True)
    code, honest = rows_of(out)["cheat"]["code"], rows_of(out)["honest"]["code"]
    assert code and honest
    assert review(course, "cheat", "--refuse", "--by", "Park", "--reason", "copied the hidden test") == 0
    res, lines = run(course, root, out)
    assert any("withdrawn" in line and "cheat" in line for line in lines), lines
    entry = json.loads((out / "certificates.json").read_text())["certificates"][code]
    assert entry["status"] == "withdrawn"
    capsys.readouterr()
    assert main(["--root", str(course.root), "grade", "verify", code]) == 1
    assert "WITHDRAWN" in capsys.readouterr().out
    register = json.loads((out / "certificates.json").read_text())["certificates"]
    assert register[honest]["status"] == "issued"  # still held, issued before: it stands


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 1, "decisions": [{"student": "cheat"}]}',
                                     b'{"version": 1, "decisions": [{"student": "cheat", "lab": "z-assess", '
                                     b'"verdict": "pardon", "notebook": "", "holds": [], "by": "x", "reason": "y", '
                                     b'"at": "t"}]}', b"\xff\xfe", b"[" * 100_000])
def test_a_decisions_file_that_cannot_be_read_stops_results_and_loses_nothing(held_room, content, capsys):
    """A cut-off or hand-edited decisions.json taken as empty would lose a refusal, and ``--issue-held``
    would then issue the refused certificate. Catches reading it leniently."""
    course, root, out = held_room
    assert review(course, "cheat", "--refuse", "--by", "Lee", "--reason", "copied") == 0
    run(course, root, out)
    before = (out / "passfail.csv").read_bytes()
    (out / "decisions.json").write_bytes(content)
    with pytest.raises(ResultsStopped, match="decisions.json cannot be read"):
        results(course, root, out, issue_held=True, report=lambda line: None)
    assert (out / "passfail.csv").read_bytes() == before
    assert not (out / "certificates" / "acc" / "cheat.pdf").exists()
    capsys.readouterr()
    assert review(course) == 2 and "decisions.json cannot be read" in capsys.readouterr().err
    assert (out / "decisions.json").read_bytes() == content  # kept for a person to mend


@pytest.mark.parametrize("argv, says", [
    (["honest", "--clear", "--reason", "fine"], "--by"),
    (["--clear", "--by", "Lee", "--reason", "fine"], "name the trainee"),
    (["honest", "nobody", "--clear", "--by", "Lee", "--reason", "fine"], "not in the gradebook: nobody"),
    (["clean", "--clear", "--by", "Lee", "--reason", "fine"], "clean: nothing is held"),
    (["clean", "--refuse", "--by", "Lee", "--reason", "seen copying"], "name the lab to refuse with --lab"),
    (["honest", "--clear", "--lab", "a-lab", "--by", "Lee", "--reason", "fine"], "nothing is held in a-lab"),
    (["honest", "--clear", "--by", "Lee", "--reason", "two\nlines"], "printable text"),
    (["honest", "--clear", "--lab", "z-asess", "--by", "Lee", "--reason", "fine"], "z-assess"),
])
def test_a_decision_that_cannot_be_made_records_nothing(held_room, capsys, argv, says):
    """Each mistake gets one line and exit 2, and no decision is written (not even the other trainee's
    of the same command: ``honest nobody`` records nothing for honest)."""
    course, root, out = held_room
    assert review(course, *argv) == 2
    assert says in capsys.readouterr().err
    assert not (out / "decisions.json").exists()


def test_refusing_a_trainee_with_nothing_held_needs_the_lab_and_then_holds(held_room):
    """An instructor who saw a trainee copy on the day refuses a clean pass by naming the lab."""
    course, root, out = held_room
    assert review(course, "clean", "--refuse", "--lab", "a-lab", "--by", "Kim", "--reason", "seen copying") == 0
    run(course, root, out)
    row = rows_of(out)["clean"]
    assert row["certificate"] == "refused on review" and "a-lab: refused by Kim" in row["review"]
    # Undone by a clearance of that lab (nothing is held there, but a refusal stands).
    assert review(course, "clean", "--clear", "--lab", "a-lab", "--by", "Kim", "--reason", "it was the neighbour") == 0
    run(course, root, out)
    assert rows_of(out)["clean"]["certificate"] == "yes"


def test_two_instructors_deciding_at_once_lose_neither_decision(held_room):
    """Two ``review`` commands at the same moment: each read decisions.json, appended its own and wrote
    it whole, so the later write dropped the earlier decision. Catches a record without the lock (the
    second process reads the file only once the first has written it)."""
    import multiprocessing

    course, root, out = held_room
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(2)

    def decide(student: str, verdict: str) -> None:
        start.wait(timeout=30)
        raise SystemExit(review(course, student, f"--{verdict}", "--by", student, "--reason", "at once"))

    procs = [ctx.Process(target=decide, args=a) for a in (("honest", "clear"), ("cheat", "refuse"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0, p.exitcode
    made = {(d.student, d.verdict) for d in Decisions.load(out).entries}
    assert made == {("honest", "clear"), ("cheat", "refuse")}, made


# ------------------------------------------------------------------------- answers shared in the room

ANSWERS = {
    "honest": '''def histogram(values, bins):
    counts = [0] * bins
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    for v in values:
        k = int((v - lo) / width)
        if k == bins:
            k -= 1
        counts[k] += 1
    return counts
''',
    "cheat": '''def histogram(data, nbins):
    # count each value into its bin
    out = [0] * nbins
    low, high = min(data), max(data)
    step = (high - low) / nbins or 1.0

    for x in data:
        idx = int((x - low) / step)
        if idx == nbins:
            idx -= 1
        out[idx] += 1
    return out
''',
    "clean": '''import numpy as np

def histogram(values, bins):
    edges = np.linspace(np.min(values), np.max(values), bins + 1)
    found, _ = np.histogram(np.asarray(values), bins=edges)
    return found.tolist()
''',
    "other": '''def histogram(values, bins):
    ordered = sorted(values)
    first, last = ordered[0], ordered[-1]
    result = {b: 0 for b in range(bins)}
    span = max(last - first, 1e-12)
    for item in ordered:
        result[min(bins - 1, int(bins * (item - first) / span))] += 1
    return [result[b] for b in range(bins)]
''',
}
STUB = "def histogram(values, bins):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


def lab_notebook(answer: str) -> str:
    cell = {"cell_type": "code", "execution_count": None, "id": "answer", "outputs": [], "source": answer,
            "metadata": {"nbgrader": {"grade": False, "grade_id": "histogram", "locked": False, "schema_version": 3,
                                      "solution": True, "task": False}}}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def copying_room(make_course):
    """Four trainees who all pass; ``cheat`` handed in ``honest``'s answer renamed and recommented."""
    course, root, out = make_course()
    gradebook(root, course.id, passing(*ANSWERS))
    for step, text in (("release", STUB), ("source", "def histogram(values, bins):\n    ### BEGIN SOLUTION\n"
                                                      "    return [len(values)] + [0] * (bins - 1)\n"
                                                      "    ### END SOLUTION\n")):
        (root / step / "z-assess").mkdir(parents=True)
        (root / step / "z-assess" / "z-assess.ipynb").write_text(lab_notebook(text))
    for student, answer in ANSWERS.items():
        hand_in(root, out, student, "a-lab", NOTEBOOK + " " + student, status="graded")
        hand_in(root, out, student, "z-assess", lab_notebook(answer), status="graded")
    return course, root, out


def test_answers_shared_in_the_room_hold_both_certificates_for_a_person(copying_room, capsys):
    """Every test passed for both, so nothing held the copy before: both were certified. Catches a room
    nobody compares; the two other trainees (the same exercise, their own code) stay certified."""
    course, root, out = copying_room
    run(course, root, out)
    rows = rows_of(out)
    for student in ("honest", "cheat"):
        assert rows[student]["certificate"].startswith("held"), rows[student]
        assert "z-assess: answers shared between cheat and honest (" in rows[student]["review"]
        assert "tokens" in rows[student]["review"]  # the figures, for the person who decides
    assert rows["clean"]["certificate"] == "yes" and rows["other"]["certificate"] == "yes"
    capsys.readouterr()
    assert review(course) == 0
    listed = capsys.readouterr().out
    assert "hold     z-assess: answers shared with cheat (cells: histogram)" in listed
    assert "hold     z-assess: answers shared with honest (cells: histogram)" in listed

    assert review(course, "honest", "--clear", "--by", "Lee", "--reason", "wrote it; cheat took it") == 0
    assert review(course, "cheat", "--refuse", "--by", "Lee", "--reason", "copied honest's answer") == 0
    run(course, root, out)
    rows = rows_of(out)
    assert rows["honest"]["certificate"] == "yes" and rows["cheat"]["certificate"] == "refused on review"


def test_a_copy_of_the_courses_solution_is_held(copying_room):
    """A leaked solution handed in by one trainee (here ``other``'s answer is the course's solution):
    held against the course's solution, which is never a trainee. Catches a comparison of trainees only."""
    course, root, out = copying_room
    body = ANSWERS["other"].split("\n", 1)[1]
    solution = "def histogram(values, bins):\n    ### BEGIN SOLUTION\n" + body + "    ### END SOLUTION\n"
    (root / "source" / "z-assess" / "z-assess.ipynb").write_text(lab_notebook(solution))
    run(course, root, out)
    rows = rows_of(out)
    assert rows["other"]["certificate"].startswith("held"), rows["other"]
    assert "z-assess: answers shared between other and the course's solution" in rows["other"]["review"]
    assert rows["clean"]["certificate"] == "yes"


def test_the_rooms_findings_are_kept_and_compared_again_when_a_notebook_changes(copying_room):
    """The findings of a lab are kept beside its state (``review`` reads every lab each time it runs) under
    a key of every input. Catches a kept finding that outlives the copy: ``cheat`` hands in work of
    their own, graded, and neither certificate is held any more; and one that ignores a new copy."""
    course, root, out = copying_room
    run(course, root, out)
    kept = out / "z-assess" / "shared-answers.json"
    assert "cheat" in kept.read_text() and rows_of(out)["cheat"]["certificate"].startswith("held")
    own = ("def histogram(values, bins):\n"
           "    import collections\n"
           "    lo = min(values)\n"
           "    size = ((max(values) - lo) / bins) or 1.0\n"
           "    seen = collections.Counter(min(int((v - lo) // size), bins - 1) for v in values)\n"
           "    return [seen.get(i, 0) for i in range(bins)]\n")
    hand_in(root, out, "cheat", "z-assess", lab_notebook(own), status="graded")
    hand_in(root, out, "other", "z-assess", lab_notebook(ANSWERS["honest"].replace("counts", "tally")),
            status="graded")
    run(course, root, out)
    rows = rows_of(out)
    assert rows["other"]["certificate"].startswith("held") and rows["honest"]["certificate"].startswith("held")
    assert "between honest and other" in rows["other"]["review"], rows["other"]
    assert "shared between cheat and honest" not in rows["honest"]["review"], rows["honest"]
    assert rows["cheat"]["certificate"] == "yes", rows["cheat"]


def test_a_notebook_the_parser_cannot_read_is_compared_as_absent(copying_room):
    """A hand-in nested past JSON's depth (or not JSON) in ``submitted/``: the checks reject it, and the
    room's comparison must not stop ``results`` for everyone (a RecursionError did)."""
    course, root, out = copying_room
    hand_in(root, out, "clean", "z-assess", "[" * 100_000 + "]" * 100_000, status="rejected")
    run(course, root, out)
    rows = rows_of(out)
    assert rows["cheat"]["certificate"].startswith("held") and rows["other"]["certificate"] == "yes"


@pytest.mark.parametrize("note", ["unknown graded cell 'x\x1b[2K\nz' (not in the release; ignored by nbgrader)",
                                  "review: " + "uses sys; " * 300])
def test_a_hold_line_that_is_not_one_short_printable_line_can_still_be_decided(held_room, capsys, note):
    """A hold line is the kit's text around the trainee's (a ``grade_id``, a name in a review note): one
    with a control character, or over 2000 characters, made every ``--clear`` and ``--refuse`` of that
    lab fail ("a hold line must be one line of printable text"): nobody could decide on it but with
    ``--issue-held`` for the whole room. Catches that, and a clearance that then lifts a different such line."""
    course, root, out = held_room
    hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest", status="flagged", notes=(note,))
    assert review(course, "honest", "--clear", "--by", "Lee", "--reason", "read it: fine") == 0, capsys.readouterr()
    run(course, root, out)
    assert rows_of(out)["honest"]["certificate"] == "yes"
    assert all(len(h) <= 2000 and h.isprintable() for d in Decisions.load(out).entries for h in d.holds)
    # The same notebook held by a different line of that kind: nobody read it.
    hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest", status="flagged", notes=(note + "!",))
    run(course, root, out)
    row = rows_of(out)["honest"]
    assert row["certificate"].startswith("held") and "lapsed" in row["review"], row


@pytest.mark.parametrize("after", ["handed in again, not graded yet", "replaced by an empty file"])
def test_a_clearance_never_certifies_a_score_that_is_not_of_the_current_notebook(held_room, capsys, after):
    """``honest``'s flagged notebook earned the gradebook's 9 of 10; then a new one is handed in and not graded
    yet (or the notebook is replaced by an empty file, rejected). A person who clears what they read
    (the new notebook, or a hold line saying "pending") certified the 9 points of a notebook that is no
    longer there, which nobody graded against this file. Catches ``--clear`` recording such a lab, and a
    clearance in decisions.json (hand-made, or from before) lifting it: grade it, or ``--issue-held``."""
    course, root, out = held_room
    if after.startswith("handed"):
        hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest, last minute")
    else:
        hand_in(root, out, "honest", "z-assess", "", status="rejected")
    capsys.readouterr()
    assert review(course, "honest", "--clear", "--by", "Lee", "--reason", "the new one is fine") == 2
    err = capsys.readouterr().err
    assert "techday grade autograde z-assess" in err and "nothing was recorded" in err, err
    assert not (out / "decisions.json").exists()

    from techday.grading.results import notebook_sha, pass_fail

    row = next(r for r in pass_fail(course, root, out)[0]["acc"] if r["student"] == "honest")
    decisions = Decisions.load(out)
    decisions.record("honest", "z-assess", "clear", notebook_sha(root, "z-assess", "honest"), row["holds"]["z-assess"],
                     "Lee", "the new one is fine")
    decisions.save()
    run(course, root, out)
    row = rows_of(out)["honest"]
    assert row["certificate"].startswith("held") and row["code"] == "", row
    assert "techday grade autograde z-assess" in row["review"], row
    # Refusing it needs no score: it is recorded.
    assert review(course, "honest", "--refuse", "--by", "Lee", "--reason", "handed in someone else's") == 0


def test_a_copier_who_moves_the_copy_does_not_hold_a_cleared_neighbour_again(copying_room):
    """``honest`` was cleared (wrote it) and ``cheat`` refused. ``cheat`` then hands in the same copy moved
    into a cell of their own, the answer cell a call of it. The hold line named the cells of both
    notebooks, so ``honest``'s changed ("cells: a cell of their own, histogram"), the clearance lapsed
    and the certificate was held again: a copier could re-hold a cleared neighbour at will. Catches
    that; each trainee's hold line names their own cells, and ``cheat`` stays refused."""
    course, root, out = copying_room
    run(course, root, out)
    assert review(course, "honest", "--clear", "--by", "Lee", "--reason", "wrote it; cheat took it") == 0
    assert review(course, "cheat", "--refuse", "--by", "Lee", "--reason", "copied honest's answer") == 0
    run(course, root, out)
    assert rows_of(out)["honest"]["certificate"] == "yes"

    moved = json.loads(lab_notebook("def histogram(values, bins):\n    return mine(values, bins)\n"))
    cell = json.loads(lab_notebook(ANSWERS["cheat"].replace("def histogram", "def mine")))["cells"][0]
    cell["metadata"] = {}
    moved["cells"].insert(0, cell)
    hand_in(root, out, "cheat", "z-assess", json.dumps(moved), status="graded")
    run(course, root, out)
    rows = rows_of(out)
    assert "between cheat and honest" in rows["honest"]["review"], rows["honest"]  # still found, still shown
    assert rows["honest"]["certificate"] == "yes", rows["honest"]
    assert rows["cheat"]["certificate"] == "refused on review"


def test_a_held_certificate_issued_before_is_shown_as_still_verifying(held_room, capsys):
    """``cheat``'s certificate was issued (``--issue-held``, or before a copy was found); the next
    ``results`` holds it and keeps its code valid (a hold is not a refusal). passfail.csv showed
    "held" and no code, and ``review`` "held", so a person who left it held believed nothing was out
    while ``verify`` said GENUINE. Catches a held row that hides a code still issued."""
    course, root, out = held_room
    run(course, root, out, issue_held=True)
    code = rows_of(out)["cheat"]["code"]
    assert code
    run(course, root, out)
    row = rows_of(out)["cheat"]
    assert row["certificate"].startswith("held") and row["code"] == code, row
    assert "still verifies" in row["review"] and "--refuse" in row["review"], row
    capsys.readouterr()
    assert review(course, "cheat") == 0
    listed = capsys.readouterr().out
    assert code in listed and "still verifies" in listed, listed
    assert main(["--root", str(course.root), "grade", "verify", code]) == 0  # as said: it does


def test_a_clearance_is_bound_to_the_notebook_the_command_read(held_room, monkeypatch):
    """``review honest --clear`` read the holds, then took the lock and hashed the notebook again: a
    notebook handed in and graded in between (with the same flag) was the one cleared, unread. Catches
    a clearance bound to the file as it is at the write rather than as it was when its holds were read."""
    import contextlib

    from techday.grading import decisions as decisions_module

    course, root, out = held_room
    real = decisions_module.locked

    @contextlib.contextmanager
    def meanwhile(folder):
        hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest, swapped", status="flagged",
                notes=("review: uses sys",))
        with real(folder):
            yield

    monkeypatch.setattr(decisions_module, "locked", meanwhile)
    assert review(course, "honest", "--clear", "--by", "Lee", "--reason", "read it: fine") == 0
    run(course, root, out)
    row = rows_of(out)["honest"]
    assert row["certificate"].startswith("held") and "lapsed" in row["review"], row


def test_the_review_list_shows_whose_certificate_waits_and_counts_the_rest(held_room, capsys):
    """In a room of 300, ``review`` listed every trainee with a hold, those who did not pass too (a failed
    grading is a hold), so the few certificates waiting on a person were buried; and a lapsed decision
    was shown without why. Catches a list that shows a trainee who did not pass, with nothing decided,
    among the held ones (still listed when named), one with no count, and a lapse without its reason."""
    course, root, out = held_room
    gradebook(root, course.id, {"weak": {"a-lab": 2, "z-assess": 1}})
    hand_in(root, out, "weak", "a-lab", NOTEBOOK + " weak", status="graded")
    hand_in(root, out, "weak", "z-assess", NOTEBOOK + " weak", status="failed", notes=("KernelDied",))
    assert review(course, "honest", "--clear", "--by", "Lee", "--reason", "fine") == 0
    hand_in(root, out, "honest", "z-assess", NOTEBOOK + " honest", status="flagged",
            notes=("review: uses sys", "review: uses ctypes"))
    capsys.readouterr()
    assert review(course) == 0
    listed = capsys.readouterr().out
    assert "weak" not in listed.split("listed:")[0], listed
    assert "2 listed: 2 held, 0 refused" in listed and "1 who did not pass" in listed, listed
    assert "the notebook or its holds changed since" in listed, listed
    assert review(course, "weak") == 0
    assert "KernelDied" in capsys.readouterr().out


def test_a_trainee_whose_id_holds_a_format_character_can_be_decided_on(held_room, capsys):
    """An id may hold a format character (``id_refusal`` allows them; ``id_notes`` flags the hand-in, so
    its certificate is held for a person): ``kim`` with a zero-width space, from an ``--import`` file name
    pasted from a web form. Every decision on that trainee failed ("student must be one line of printable
    text"): only ``--issue-held``, for the whole room, could issue it. Catches that."""
    course, root, out = held_room
    odd = "kim\u200b"
    gradebook(root, course.id, passing(odd))
    hand_in(root, out, odd, "a-lab", NOTEBOOK + " kim", status="graded")
    hand_in(root, out, odd, "z-assess", NOTEBOOK + " kim", status="flagged",
            notes=(f"trainee id {odd!r} has characters outside ASCII and Hangul: check who it is",))
    capsys.readouterr()
    assert review(course, odd, "--clear", "--by", "Lee", "--reason", "checked: it is Kim") == 0, capsys.readouterr()
    run(course, root, out)
    assert rows_of(out)[odd]["certificate"] == "yes"
    assert Decisions.load(out).latest(odd, "z-assess").verdict == "clear"


@pytest.mark.parametrize("linked", ["lab folder", "trainee folder"])
def test_a_hand_in_folder_that_is_a_link_is_read_neither_by_results_nor_by_review(copying_room, capsys, linked):
    """Wrong answer caught: the checks reject a hand-in folder that is a link (a zip unpacked into
    ``submitted/`` keeps its links), but ``results`` and ``review`` read through it. ``mallory``, graded once,
    then linked her folder to ``other``'s: the room compared ``other``'s notebook as hers, so ``other``, who
    wrote their own answer, was held for sharing it with mallory (certificate ``yes`` before); a decision
    on mallory was bound to ``other``'s notebook (``notebook_sha``). Every reader now opens each step with
    ``O_NOFOLLOW`` (``checks.open_handin``): ``other`` stays certified, mallory is held (her score is of
    a notebook that is no longer there), and nothing reads or names a notebook through the link."""
    import shutil

    from techday.grading.checks import collect, has_handin, open_handin
    from techday.grading.results import notebook_sha
    from techday.grading.state import State

    course, root, out = copying_room
    gradebook(root, course.id, passing("mallory"))
    hand_in(root, out, "mallory", "a-lab", NOTEBOOK + " mallory", status="graded")
    hand_in(root, out, "mallory", "z-assess", lab_notebook(STUB), status="graded")
    run(course, root, out)
    assert rows_of(out)["other"]["certificate"] == "yes"
    if linked == "lab folder":
        shutil.rmtree(root / "submitted" / "mallory" / "z-assess")
        (root / "submitted" / "mallory" / "z-assess").symlink_to(root / "submitted" / "other" / "z-assess")
    else:
        shutil.move(root / "submitted" / "mallory" / "a-lab", root / "submitted" / "other" / "a-lab-of-mallory")
        shutil.rmtree(root / "submitted" / "mallory")
        (root / "submitted" / "mallory").symlink_to(root / "submitted" / "other", target_is_directory=True)
    # What `techday grade autograde z-assess` records: mallory's link rejected, her graded entry retired.
    subs = collect(root, "z-assess", json.loads(lab_notebook(STUB)))
    state = State(out / "z-assess" / "state.json", "z-assess")
    state.retire({s.key for s in subs})
    rejected = next(s for s in subs if s.student == "mallory")
    assert rejected.status == "rejected" and "is a link" in rejected.notes[0], rejected
    state.record(rejected)

    assert open_handin(root, "z-assess", "mallory") is None and not has_handin(root, "z-assess", "mallory")
    assert notebook_sha(root, "z-assess", "mallory") == ""
    assert notebook_sha(root, "z-assess", "other") != ""
    run(course, root, out)
    rows = rows_of(out)
    assert rows["other"]["certificate"] == "yes", rows["other"]
    assert "mallory" not in rows["other"]["review"], rows["other"]
    assert rows["mallory"]["certificate"].startswith("held"), rows["mallory"]
    capsys.readouterr()
    assert review(course, "mallory") == 0
    listed = capsys.readouterr().out
    assert "held" in listed and "submitted/mallory" not in listed and "other" not in listed, listed
