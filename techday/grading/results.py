"""``techday grade results``: from the course gradebook to what trainees and organisers receive.

- **feedback**: nbgrader's own ``generate_feedback`` (HTML per trainee and lab), with one more
  preprocessor, :class:`HideHiddenTests`. nbgrader 0.9's feedback shows the autograded notebook as
  graded, and that notebook holds the hidden tests (restored from the gradebook) and tracebacks that
  quote them; so cells with hidden tests lose those regions, and their outputs are reduced to
  "passed", a visible test's own error message, or "failed: a hidden test"; other outputs that
  quote a hidden test are removed. The course root's own config has it too (formgrader feedback).
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

from .config import FEEDBACK_PREPROCESSORS

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython's name for a cell's code in a traceback frame: "Cell In[4], line 3" (IPython 8.5 and later),
# "Input In [4], in <cell line: 3>()" (8.0 to 8.4).
FRAME = re.compile(r"Cell In\[(\d+)\], line (\d+)|Input In \[(\d+)\].*?<cell line: (\d+)>")
# Errors the grader itself writes (techday.grading.sandbox_exec and executor, nbgrader's timeout): no
# trainee's or test's text in them.
GRADER_ERRORS = {"KernelDied", "NotExecuted", "NotGraded", "CellTimeoutError"}
REMOVED = "[output removed from the feedback: it quotes a hidden test]\n"


def hidden_lines(source: str) -> set[int]:
    """1-based numbers of the lines inside hidden-test regions (markers included)."""
    lines: set[int] = set()
    for m in HIDDEN.finditer(source):
        first = source.count("\n", 0, m.start()) + 1
        lines.update(range(first, first + m.group(0).rstrip("\n").count("\n") + 1))
    return lines


def _hidden_texts(cells) -> list[str]:
    """The hidden tests' lines worth looking for in outputs (long enough not to match by chance)."""
    texts = set()
    for cell in cells:
        for m in HIDDEN.finditer(cell.source):
            for line in m.group(0).splitlines():
                line = line.strip()
                if len(line) >= 10 and "HIDDEN TESTS" not in line:
                    texts.add(line)
    return sorted(texts)


def _text(out) -> str:
    """Everything an output shows, colours taken out."""
    parts = [out.get("text") or "", out.get("ename") or "", out.get("evalue") or ""]
    parts += list(out.get("traceback") or [])
    for value in (out.get("data") or {}).values():
        parts.append(value if isinstance(value, str) else "".join(value) if isinstance(value, list) else str(value))
    return ANSI.sub("", "\n".join(str(p) for p in parts))


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback never shows a hidden test: not its code, not a traceback quoting it, not its message,
    not what the trainee's code printed while it ran; a visible test keeps its own message.

    In a cell with hidden tests, the hidden regions become one comment line and the outputs one line:
    ``passed``; ``failed: <error>: <message> (at <the failing line>)`` when the error was raised on a
    visible line (every frame of the traceback that is a notebook cell points at a visible line of
    it); ``failed: a hidden test`` otherwise, also when the traceback cannot be read. Any other
    output of the notebook that quotes a line of a hidden test (a trainee's ``print(In)``, a
    traceback) is removed too."""

    def preprocess(self, nb, resources):
        from nbformat.notebooknode import NotebookNode

        hidden = _hidden_texts(nb.cells)
        by_count = {c.get("execution_count"): c for c in nb.cells
                    if c.cell_type == "code" and c.get("execution_count") is not None}
        for cell in nb.cells:
            if "### BEGIN HIDDEN TESTS" in cell.source and cell.cell_type == "code":
                text = self._verdict(cell, by_count, hidden)
                cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
            elif cell.cell_type == "code":
                cell.outputs = [o if not any(h in _text(o) for h in hidden) else
                                NotebookNode(output_type="stream", name="stdout", text=REMOVED)
                                for o in cell.get("outputs", [])]
        for cell in nb.cells:
            if "### BEGIN HIDDEN TESTS" in cell.source:
                cell.source = HIDDEN.sub("# (hidden tests: not shown)\n", cell.source)
        return nb, resources

    @staticmethod
    def _verdict(cell, by_count: dict, hidden: list[str]) -> str:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            return "passed\n"
        shown = []
        for err in errors:
            ename, evalue = str(err.get("ename") or ""), ANSI.sub("", str(err.get("evalue") or ""))
            traceback = [ANSI.sub("", str(t)) for t in err.get("traceback") or []]
            if ename in GRADER_ERRORS and not FRAME.search("\n".join(traceback)):
                shown.append(f"{ename}: {evalue}".rstrip(": "))
                continue
            frames = [(int(a or c), int(b or d)) for a, b, c, d in FRAME.findall("\n".join(traceback))]
            mine = [line for count, line in frames if count == cell.get("execution_count")]
            if not mine:  # no frame of this cell: not something we can place
                return "failed: a hidden test (hidden tests are not shown)\n"
            for count, line in frames:
                other = by_count.get(count)
                if other is not None and line in hidden_lines(other.source):
                    return "failed: a hidden test (hidden tests are not shown)\n"
            message = f"{ename}: {evalue}" if evalue else ename
            if any(h in message for h in hidden):
                return "failed: a hidden test (hidden tests are not shown)\n"
            lines = cell.source.splitlines()
            at = lines[mine[0] - 1].strip() if 0 < mine[0] <= len(lines) else ""
            shown.append(message + (f" (at `{at}`)" if at else ""))
        return "".join(f"failed: {m}\n" for m in shown)


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
        # The course root's config has these preprocessors already (techday.grading.config); set
        # again for a root built before it did.
        Path(tmp, "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"load_subconfig({str(root / 'nbgrader_config.py')!r})  # noqa: F821\n"
            f"c.GenerateFeedback.preprocessors = {FEEDBACK_PREPROCESSORS!r}\n",
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
