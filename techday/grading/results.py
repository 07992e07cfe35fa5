"""``techday grade results``: from the course gradebook to what trainees and organisers receive.

- **feedback**: nbgrader's own ``generate_feedback`` (HTML per trainee and lab), with one more
  preprocessor, :class:`HideHiddenTests`. nbgrader 0.9's feedback shows the autograded notebook as
  graded, and that notebook holds the hidden tests (restored from the gradebook) and tracebacks that
  quote them; so cells with hidden tests lose those regions, and their outputs are reduced to
  "passed" or the error's name.
- **pass/fail per track** from ``pass_rule`` in ``course/syllabus.toml``: at least ``min_fraction``
  of the track's autograded points and ``min_lab_fraction`` in every lab of it; written to
  ``passfail.csv`` with the grading flags to review beside each trainee.
- **certificates** of completion for each trainee who passed a track (held, until ``--issue-held``,
  where the pass rests on a submission flagged for tampering or not graded): HTML, and PDF drawn with
  matplotlib's PDF backend (no new dependency) in a font with Hangul when the machine has one
  (NanumGothic from Debian's ``fonts-nanum``, Noto Sans CJK, ...).
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback never shows a hidden test: not its code, not a traceback quoting it, not what the
    trainee's code printed while it ran."""

    def preprocess_cell(self, cell, resources, index):
        if "### BEGIN HIDDEN TESTS" not in cell.source:
            return cell, resources
        cell.source = HIDDEN.sub("# (hidden tests: not shown)\n", cell.source)
        if cell.cell_type == "code":
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            from nbformat.notebooknode import NotebookNode

            text = (f"failed: {errors[0].get('ename')} (a visible or a hidden test; hidden tests are not shown)\n"
                    if errors else "passed\n")
            cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
        return cell, resources


@dataclass
class Results:
    passfail: Path
    feedback_dir: Path
    cert_dir: Path
    tracks: dict[str, list[dict]] = field(default_factory=dict)
    certificates: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    font: str = ""


def generate_feedback(root: Path, labs: list[str]) -> list[str]:
    """nbgrader generate_feedback for each lab, with HideHiddenTests added; the problems met."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"load_subconfig({str(root / 'nbgrader_config.py')!r})  # noqa: F821\n"
            "from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor\n"
            "from nbgrader.preprocessors import GetGrades\n"
            "from techday.grading.results import HideHiddenTests\n"
            "c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, HideHiddenTests]\n",
            encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]) + os.pathsep
               + os.environ.get("PYTHONPATH", "")}
        for lab in labs:
            proc = subprocess.run([sys.executable, "-m", "techday.nbgrader_cli", "generate_feedback", lab, "--force"], cwd=tmp,
                                  env=env, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                from ..build import nbgrader_error

                problems.append(f"nbgrader generate_feedback {lab}: {nbgrader_error(proc)}")
    return problems


def _flags(out: Path) -> dict[tuple[str, str], list[str]]:
    """(lab, student) -> notes of submissions that grading flagged or could not grade."""
    flags: dict[tuple[str, str], list[str]] = {}
    for state in sorted(out.glob("*/state.json")):
        data = json.loads(state.read_text(encoding="utf-8"))
        for entry in data.get("submissions", {}).values():
            if entry.get("status") in ("flagged", "failed", "rejected"):
                note = f"{data['lab']}: {entry['status']}: {'; '.join(entry.get('notes', []))}"
                flags.setdefault((data["lab"], entry["student"]), []).append(note)
    return flags


def pass_fail(course, root: Path, out: Path) -> tuple[dict[str, list[dict]], list[str]]:
    """Per track, per trainee: points, fractions, passed, and what to review."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    tracks: dict[str, list[dict]] = {}
    notes = []
    flags = _flags(out)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}", course.id) as gb:
        warnings.simplefilter("ignore")
        known = {a.name: a for a in gb.assignments}
        students = [s.id for s in gb.students]
        for track in course.tracks.values():
            missing = [lab for lab in track.labs if lab not in known]
            if missing:
                notes.append(f"track {track.id}: not decided, labs not in the gradebook: {', '.join(missing)}")
                continue
            rule = track.pass_rule
            rows = []
            for student in students:
                got = total = 0.0
                worst = 1.0
                review = []
                for lab in track.labs:
                    maximum = float(known[lab].max_score or 0)
                    try:
                        score = float(gb.find_submission(lab, student).score or 0)
                    except MissingEntry:
                        score = 0.0
                        review.append(f"{lab}: no submission")
                    got += score
                    total += maximum
                    worst = min(worst, score / maximum if maximum else 1.0)
                    review += flags.get((lab, student), [])
                fraction = got / total if total else 0.0
                passed = fraction >= rule.get("min_fraction", 0.7) and worst >= rule.get("min_lab_fraction", 0.0)
                # A pass that rests on a submission flagged for tampering waits for a person.
                held = passed and any(": review: " in note or ": failed: " in note for note in review)
                rows.append({"track": track.id, "student": student, "points": round(got, 3),
                             "max_points": round(total, 3), "fraction": round(fraction, 4),
                             "lowest_lab_fraction": round(worst, 4), "passed": passed,
                             "certificate": "held: review the flags" if held else ("yes" if passed else "no"),
                             "review": " | ".join(review)})
            tracks[track.id] = rows
    return tracks, notes


def hangul_font() -> str | None:
    """A font file with Hangul syllables, if this machine has one."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    preferred = ("NanumGothic", "NotoSansCJK", "NotoSansKR", "NotoSerifCJK", "UnDotum", "Baekmuk")
    paths = sorted(font_manager.findSystemFonts(), key=lambda p: (not any(n in p for n in preferred), p))
    for path in paths:
        try:
            if 0xAC00 in FT2Font(path).get_charmap():
                return path
        except Exception:
            continue
    return None


def certificate_html(course, track, row: dict, date: str) -> str:
    e = html.escape
    return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{e(course.title)}: {e(track.title)}</title>
<style>body{{font-family:"Noto Sans KR","NanumGothic","Apple SD Gothic Neo","Malgun Gothic",sans-serif;
text-align:center;margin:4em;border:6px double #76b900;padding:3em}} h1{{margin-bottom:0}}
.name{{font-size:2.2em;margin:1em 0 .2em}} .small{{color:#555}}</style></head>
<body><h1>Certificate of completion</h1><p class="small">수료증</p>
<p class="name">{e(row['student'])}</p>
<p>has completed the track / 다음 과정을 수료했습니다</p>
<h2>{e(track.title)}</h2><p>{e(track.title_ko)}</p>
<p>{e(course.title)}: {len(track.labs)} graded labs, {row['points']:g} of {row['max_points']:g} points
({100 * row['fraction']:.0f}%)</p><p class="small">{e(date)}</p></body></html>
"""


def certificate_pdf(path: Path, course, track, row: dict, date: str, font: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.font_manager import FontProperties
    from matplotlib.figure import Figure

    fp = FontProperties(fname=font) if font else FontProperties(family="DejaVu Sans")
    fig = Figure(figsize=(11.69, 8.27))  # A4 landscape
    fig.patches.append(matplotlib.patches.Rectangle((0.03, 0.04), 0.94, 0.92, transform=fig.transFigure,
                                                    fill=False, linewidth=4, edgecolor="#76b900"))
    name = row["student"]
    if not font and not name.isascii():
        name += "  (install a Hangul font, e.g. fonts-nanum, to print this name)"
    lines = [(0.80, "Certificate of completion", 30), (0.73, "수료증" if font else "", 16),
             (0.58, name, 34), (0.49, "has completed the track / 다음 과정을 수료했습니다" if font else
                                "has completed the track", 14),
             (0.40, track.title, 22), (0.34, track.title_ko if font else "", 16),
             (0.24, f"{course.title}: {len(track.labs)} graded labs, {row['points']:g} of {row['max_points']:g} "
                    f"points ({100 * row['fraction']:.0f}%)", 12), (0.12, date, 11)]
    for y, text, size in lines:
        if text:
            fig.text(0.5, y, text, ha="center", va="center", fontproperties=fp, fontsize=size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with PdfPages(path, metadata={"Title": f"{course.title}: {track.title}", "Subject": row["student"]}) as pdf:
        pdf.savefig(fig)


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "trainee"


def results(course, root: Path, out: Path, issue_held: bool = False, report=print) -> Results:
    from ..build import nbgrader

    out.mkdir(parents=True, exist_ok=True)
    res = Results(passfail=out / "passfail.csv", feedback_dir=root / "feedback", cert_dir=out / "certificates")
    graded = sorted({p.parent.name for p in root.glob("autograded/*/*/*.ipynb")})
    report(f"feedback for {', '.join(graded) or 'no lab'} (nbgrader generate_feedback, hidden tests removed) ...")
    res.problems += generate_feedback(root, graded)
    proc = nbgrader(root, "export", "--to", str(out / "grades.csv"))
    if proc.returncode != 0:
        res.problems.append("nbgrader export failed")
    res.tracks, notes = pass_fail(course, root, out)
    for note in notes:
        report(note)
    with open(res.passfail, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["track", "student", "points", "max_points", "fraction",
                                          "lowest_lab_fraction", "passed", "certificate", "review"])
        w.writeheader()
        for rows in res.tracks.values():
            w.writerows(rows)
    font = hangul_font()
    res.font = font or ""
    if res.cert_dir.exists():
        import shutil

        shutil.rmtree(res.cert_dir)
    report(f"certificate font: {font or 'none with Hangul found (install fonts-nanum); PDFs use DejaVu Sans'}")
    date = time.strftime("%Y-%m-%d")
    for track_id, rows in res.tracks.items():
        track = course.tracks[track_id]
        for row in rows:
            if not row["passed"] or (row["certificate"] != "yes" and not issue_held):
                continue
            base = res.cert_dir / track_id / _safe(row["student"])
            base.parent.mkdir(parents=True, exist_ok=True)
            base.with_suffix(".html").write_text(certificate_html(course, track, row, date), encoding="utf-8")
            certificate_pdf(base.with_suffix(".pdf"), course, track, row, date, font)
            res.certificates.append(base.with_suffix(".pdf"))
    return res
