"""``techday bench leaderboard``: merge a room's result files into ranked tables and one roofline.

Input: result files, folders of them (searched for ``*.json``, :data:`MAX_FOLDER_DEPTH` deep), or an
nbgrader course root / ``submitted/`` tree, where the files of one lab are taken from
``submitted/<student>/<lab>/`` (at most :data:`MAX_FILES_PER_PARTICIPANT` per student).

Every file is data from a stranger. It is read within size caps (:func:`.schema.read_document`),
checked against an allow-list schema (:func:`.schema.validate`), and every figure is recomputed from
the suite's plan and the project's limits table (:func:`.verify.verify`); the file's own figures,
fractions and limits are never shown. A file that fails any of that, or that duplicates a run
already merged or one of the kit's own committed runs (decided by figures: the same results, every
timed figure within 0.5 % of another run's or off by one common factor, by name or by rank within
equal counts, or two figures with every recorded time of another's under any name; a shared
``run_id`` alone only marks both files), gets one line naming it
and the reason, and is left out. Nothing else is lost: every other file is merged, and an unexpected
failure on one file leaves that file out rather than stopping the board.

What it judges with is the kit's own (:func:`.families.kit_benchmarks_dir`), never a course found from
the working directory; below a folder given, no symbolic link is followed, nor one another user made
on the way to a path named (a shell glob names what participants made); test fixtures are ranked
only where the kit keeps them or when named on the command line (and the board's user's own).

Output: per kernel, the participants ranked by their best run's best implementation (one row each;
equal figures share a rank; modes other than ``quick`` apart; a GPU figure above its physical limit,
within the 105 % that refuses it, marked); per GPU model, the best and the
median; GPU runs and CPU-tier runs are never ranked together. Names and devices are shown as
printable ASCII, any other character as its escape.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import html
import json
import math
import os
import re
import stat
import statistics
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .. import atomicfile
from .report import UNITS, roofline_png
from .schema import LEGACY, ReadError, read_document
from .schema import SCHEMA as SCHEMA_READ
from .verify import Figure, Refused, Verified, verify

SCHEMA = "techday.leaderboard/1"


def inert(text: str) -> str:
    """A stranger's name as the board shows it: printable ASCII as is, every other character as its
    escape (``\\u0430lice``, not a Cyrillic 'alice' passing for alice's; no invisible or look-alike
    character can make two participants, or two devices, read the same).

    One-to-one: the escape character is escaped too (a folder named ``\\u0430lice`` in ASCII is shown
    ``\\\\u0430lice``, not as the Cyrillic name's escape), and so is a space a page would collapse
    (leading, trailing or beside another: ``zoe\\x20``, not ``zoe `` drawn as ``zoe``)."""
    text = str(text)
    out = []
    last = len(text) - 1
    for i, c in enumerate(text):
        if c == "\\":
            out.append("\\\\")
        elif c == " " and (i == 0 or i == last or text[i - 1] == " " or text[i + 1] == " "):
            out.append("\\x20")
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(ascii(c)[1:-1])
    return "".join(out)


# Characters that read alike, folded by :func:`skeleton` (after NFKD and case folding): ASCII look-alikes
# in a sans-serif font, and the Cyrillic and Greek letters drawn as Latin ones.
_LOOKALIKE = str.maketrans({"l": "i", "1": "i", "|": "i", "!": "i", "\u0131": "i", "0": "o",
                            "\u0430": "a", "\u0435": "e", "\u0456": "i", "\u0458": "j", "\u043a": "k",
                            "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y", "\u0445": "x",
                            "\u0455": "s", "\u0501": "d", "\u051b": "q", "\u051d": "w", "\u04af": "y",
                            "\u04bb": "h", "\u03b1": "a", "\u03bf": "o", "\u03c1": "p", "\u03bd": "v",
                            "\u03b9": "i", "\u03ba": "k", "\u03c5": "u", "\u03c7": "x", "\u03b5": "e"})


def skeleton(name: str) -> str:
    """What a name looks like, for telling look-alikes apart: compatibility-decomposed (full-width
    letters, NFC and NFD alike), case-folded, accents dropped, look-alike letters folded (``aIice``,
    ``a1ice``, a Cyrillic ``с``), ``rn`` read as ``m``, and only letters and digits kept (no
    invisible characters, spaces or punctuation)."""
    s = unicodedata.normalize("NFKD", str(name)).casefold()
    s = "".join(c for c in s if not unicodedata.combining(c)).translate(_LOOKALIKE)
    return "".join(c for c in s.replace("rn", "m").replace("vv", "w") if c.isalnum())


def shown(value: float) -> float:
    """A figure as the tables show it (one decimal): what ranks it. Digits no one sees decide nothing."""
    return float(f"{value:.1f}")


MAX_LOOKALIKES = 5  # other participants named on a look-alike's rows
MAX_DISPUTES = 5    # reasons a disputed run's rows name (the rest counted: "and 1,999 more")


@dataclass
class Run:
    path: Path
    verified: Verified
    who: str
    participant: tuple = ()  # whose run it is (see discover); ranked once per participant and kernel
    # Files of other participants left out as copies of this run. The board cannot tell which of two
    # copies is the original (the first in path order is kept): a name that sorts first must not take
    # another's place unseen, so the kept run's rows say "disputed" and name the other file.
    disputed: list = field(default_factory=list)
    disputed_more: int = 0  # disputes past the first MAX_DISPUTES, counted, not written (see dispute)
    name: str = ""  # the participant's name as the layout gives it (``who`` is how it is shown)
    # Other participants whose names read like this one's (see skeleton): both rows are marked, so that
    # "aIice" is not taken for alice's.
    lookalike: list = field(default_factory=list)

    def dispute(self, why) -> None:
        """Mark this run disputed, naming why (a string, or a callable giving it: not formatted past the
        cap). At most :data:`MAX_DISPUTES` reasons are written, the rest counted: every row of the run
        carries them, and 400 files sharing one ``run_id`` each named the 399 others on each of their 45
        rows (60 MB of JSON and 43 MB of HTML; 2,000 such files, about 1.5 GB)."""
        if len(self.disputed) < MAX_DISPUTES:
            self.disputed.append(why() if callable(why) else why)
        else:
            self.disputed_more += 1

    @property
    def doc(self) -> dict:
        return self.verified.doc

    @property
    def tier(self) -> str:
        return self.doc["tier"]

    @property
    def tag(self) -> str:
        """What the board publishes of the run's id: a digest that tells runs apart. The id itself, in
        leaderboard.json, let anyone paste it into a run of their own and have its owner's rows marked
        "shares run_id ...: disputed"."""
        return hashlib.sha256(self.doc["run_id"].encode()).hexdigest()[:16]

    @property
    def device(self) -> str:
        gpu = self.doc["environment"].get("gpu")
        return inert(gpu["name"] if gpu else self.doc["environment"].get("device", "CPU"))

    @property
    def mode(self) -> str:
        return self.doc["mode"]

    @property
    def model(self) -> str:
        """The published row's name (with its MIG profile) on the GPU tier, else the device's name (a
        CPU-tier run's, the file's own words: shown inert, like every stranger's string)."""
        return inert(self.verified.model)

    @property
    def fixture(self) -> bool:
        return bool(self.doc.get("fixture"))

    def best(self) -> dict[str, Figure]:
        """kernel key -> the best recomputed figure of this run (highest rate; lowest latency), among the
        implementations that run on the run's own tier (CPU implementations of a GPU run are not ranked)."""
        out: dict[str, Figure] = {}
        for f in self.verified.figures:
            if f.device != self.tier:
                continue
            cur = out.get(f.key)
            if cur is None or (f.value < cur.value if f.metric == "us" else f.value > cur.value):
                out[f.key] = f
        return out

    def plot_doc(self, figures: list[Figure] | None = None) -> dict:
        """What the roofline draws for this run (or these ``figures`` of its participant on its device):
        only recomputed figures and the project's limits, under a name with no characters a plot would
        interpret (matplotlib reads ``$...$`` as maths)."""
        name = re.sub(r"[^A-Za-z0-9 ._()+,:/@-]", "?", self.model)[:80]
        env = {"gpu": {"name": name}} if self.tier == "gpu" else {"gpu": None, "cpu": name}
        results = [{"family": f.family, "kernel": f.kernel, "impl": f.impl, "status": "ok", "device": f.device,
                    "metric": f.metric, "value": f.value, "gflops": f.gflops, "intensity": f.intensity}
                   for f in (self.verified.figures if figures is None else figures)]
        return {"tier": self.tier, "environment": env, "limits": self.verified.limits, "results": results}

    @functools.cached_property
    def _signature(self) -> dict[str, float]:
        return {f"{f.key} {f.impl}": 1 / f.value if f.metric == "us" else f.value for f in self.verified.figures}

    @functools.cached_property
    def _ranked(self) -> dict[str, float]:
        return by_rank({f"{f.metric}:{f.amount} {f.key} {f.impl}": v
                        for f, v in zip(self.verified.figures, self._signature_values())})

    def _signature_values(self) -> list[float]:
        return [1 / f.value if f.metric == "us" else f.value for f in self.verified.figures]

    def ranked(self) -> dict[str, float]:
        """The signature with the figures' names dropped (:func:`by_rank`): what a copy keeps under
        whatever kernel and implementation it hands each figure in as."""
        return self._ranked

    def signature(self) -> dict[str, float]:
        """(kernel, implementation) -> the figure at the median time (launches per microsecond for a
        latency, so that every entry scales alike with the times): what a copied run cannot help but
        keep. Figures, not seconds: a run of another mode (another plan, other sizes) copies another's
        figures only by giving every kernel other times, so its seconds share no common factor."""
        return self._signature

    @functools.cached_property
    def _times(self) -> dict[str, tuple]:
        return {f"{f.key} {f.impl}": f.times for f in self.verified.figures}

    def times(self) -> dict[str, tuple]:
        """(kernel, implementation) -> every recorded time of the figure (median, fastest, slowest,
        spread, repetitions): two runs share one by chance at most, a replayed figure all of them.

        Not the median and fastest time alone, though only they make the figure (a copier who edits the
        slowest time, spread or repetitions of pasted figures is not caught): CUDA-event times are
        quantized (to about 32 ns on an H200), and two honest runs of one GPU model share a median, or a
        fastest time, in about one figure in ten (the kit's two H200 runs: one of each in 44 figures);
        both together in two figures of one pair of honest runs is then likely enough, over the pairs
        of a room of one GPU model, to leave honest runs out as copies (an estimate, not measured)."""
        return self._times


@dataclass
class Rejected:
    path: Path
    reason: str


@dataclass
class Leaderboard:
    runs: list[Run] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    comparisons: int = 0  # runs compared in full for copies (see _Index): grows with the room, not its square

    def rejected_lines(self) -> list[str]:
        # A path is a stranger's name too: a file called "\x1b]0;...\x07.json" must not retitle the
        # instructor's terminal, nor a right-to-left override reverse what follows it.
        return [f"{inert(str(r.path))}: {inert(r.reason)}" for r in self.rejected]

    # -----------------------------------------------------------------------------------------

    def rankings(self, tier: str = "gpu") -> dict[str, list[dict]]:
        """kernel key -> rows ranked best first: rank, who, device, impl, value, unit, fraction, file.

        Runs of another mode than ``quick`` are ranked apart (``stream.triad [full]``, ``[ci]``): their
        plans differ (a CPU-tier ``ci`` run's arrays fit in a cache), so their figures are not the
        quick suite's. Each participant holds one row per kernel, their best run's; equal figures
        share a rank (no name sorts its way ahead)."""
        table: dict[str, dict[tuple, dict]] = {}
        for run in self.runs:
            if run.tier != tier:
                continue
            for key, r in run.best().items():
                row = {"who": run.who, "device": run.device, "model": run.model, "impl": r.impl,
                       "value": r.value, "best": r.best, "metric": r.metric, "fraction": r.fraction,
                       "fixture": run.fixture, "file": str(run.path), "run": run.tag, "above_limit": r.above_limit,
                       "disputed": list(run.disputed), "lookalike": list(run.lookalike)}
                rows = table.setdefault(key if run.mode == "quick" else f"{key} [{run.mode}]", {})
                who = run.participant or (str(run.path),)
                mine = rows.get(who)
                if mine is None or (r.value < mine["value"] if r.metric == "us" else r.value > mine["value"]):
                    rows[who] = row
        out: dict[str, list[dict]] = {}
        for key, by_who in table.items():
            # Ranked by the figure as shown, not by digits no one sees: a time shaved by one part in a
            # billion used to rank first beside an equal-looking figure (ties keep path order, shared rank).
            rows = sorted(by_who.values(), key=lambda x: shown(x["value"]),
                          reverse=next(iter(by_who.values()))["metric"] != "us")
            for i, row in enumerate(rows):
                row["rank"] = rows[i - 1]["rank"] if i and shown(row["value"]) == shown(rows[i - 1]["value"]) else i + 1
            out[key] = rows
        return dict(sorted(out.items()))

    def per_model(self, tier: str = "gpu") -> dict[str, dict[str, dict]]:
        """model -> kernel key -> {best, median, runs, metric, best_who}; ``best_who`` lists every
        participant whose figure ties the best as shown (not the one whose name sorts first)."""
        out: dict[str, dict[str, dict]] = {}
        for key, rows in self.rankings(tier).items():
            by_model: dict[str, list[dict]] = {}
            for row in rows:
                by_model.setdefault(row["model"], []).append(row)
            for model, mrows in by_model.items():
                values = [r["value"] for r in mrows]
                best = mrows[0]  # rows are ranked already
                out.setdefault(model, {})[key] = {
                    "best": best["value"], "median": statistics.median(values),
                    "best_who": [r["who"] for r in mrows if shown(r["value"]) == shown(best["value"])],
                    "runs": len(values), "metric": best["metric"],
                    "best_fraction": best["fraction"], "best_above_limit": best["above_limit"]}
        return dict(sorted(out.items()))

    def plot_docs(self) -> list[dict]:
        """What the roofline draws: per participant and device, the best figure of each kernel (as the
        rankings pick it), so the points are bounded by participants x kernels, not by files x figures."""
        best: dict[tuple, tuple[Run, dict]] = {}
        for run in self.runs:
            who = (run.participant or (str(run.path),), run.tier, run.model)
            mine = best.setdefault(who, (run, {}))[1]
            for key, f in run.best().items():
                key = key if run.mode == "quick" else f"{key} [{run.mode}]"
                cur = mine.get(key)
                if cur is None or (f.value < cur.value if f.metric == "us" else f.value > cur.value):
                    mine[key] = f
        return [run.plot_doc(list(figures.values())) for run, figures in best.values()]

    def to_dict(self) -> dict:
        return {"schema": SCHEMA,
                "runs": [{"file": str(r.path), "who": r.who, "run": r.tag, "tier": r.tier,
                          "device": r.device, "model": r.model, "fixture": r.fixture, "disputed": r.disputed,
                          "lookalike": r.lookalike}
                         for r in self.runs],
                "rejected": [{"file": str(r.path), "reason": r.reason} for r in self.rejected],
                "rankings": {"gpu": self.rankings("gpu"), "cpu": self.rankings("cpu")},
                "per_model": {"gpu": self.per_model("gpu"), "cpu": self.per_model("cpu")}}

    # -----------------------------------------------------------------------------------------

    def tables(self, top: int = 10):
        from rich.table import Table
        from rich.text import Text

        def x(text: str) -> Text:
            # Every cell as plain text: rich reads a string's "[full]" as a style (the mode tag vanished)
            # and its ":o:" as an emoji (a folder named "b:o:b" was printed "b⭕b", read as bob), even
            # escaped with rich.markup.escape, which escapes only the brackets.
            return Text(str(text))

        out = []
        for tier in ("gpu", "cpu"):
            rankings = self.rankings(tier)
            if not rankings:
                continue
            tag = "GPU" if tier == "gpu" else "CPU tier (CPU figures, not GPU figures)"
            t = Table(title=f"leaderboard, {tag}: best implementation per run")
            # The board's marks have a column of their own: in the name's, a folder named "alice (disputed)"
            # read as alice's row marked disputed (a name may hold any printable ASCII).
            for col in ("kernel", "#", "who", "marks", "device", "impl", "figure (median)", "best", "of limit"):
                t.add_column(col)
            for key, rows in rankings.items():
                for i, row in enumerate(rows[:top]):
                    t.add_row(x(key) if i == 0 else "", str(row["rank"]),  # ties share rank 1: the key once
                              x(row["who"]), " ".join(m for m, on in (("(fixture)", row["fixture"]),
                                                                      ("(disputed)", row["disputed"]),
                                                                      ("(look-alike)", row["lookalike"]),
                                                                      ("(above limit)", row["above_limit"])) if on),
                              x(row["model"]), x(row["impl"]),
                              f"{row['value']:,.1f} {UNITS[row['metric']]}", f"{row['best']:,.1f}",
                              "" if row["fraction"] is None else f"{row['fraction']:.0%}")
            out.append(t)
            m = Table(title=f"per model, {tag}: best and median run")
            for col in ("model", "kernel", "runs", "best", "median", "best of limit"):
                m.add_column(col)
            for model, kernels in self.per_model(tier).items():
                for i, (key, s) in enumerate(kernels.items()):
                    m.add_row(x(model) if i == 0 else "", x(key), str(s["runs"]),
                              f"{s['best']:,.1f} {UNITS[s['metric']]}",
                              f"{s['median']:,.1f}", ("" if s["best_fraction"] is None else f"{s['best_fraction']:.0%}")
                              + (" (above limit)" if s["best_above_limit"] else ""))
            out.append(m)
        return out

    def write(self, out: Path) -> dict[str, Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "leaderboard.json", "png": out / "roofline.png", "html": out / "leaderboard.html"}
        atomicfile.write_text(paths["json"], json.dumps(self.to_dict(), indent=1) + "\n")
        png = roofline_png(self.plot_docs(), paths["png"], title="Roofline: every device") if self.runs else b""
        atomicfile.write_text(paths["html"], self.html(png))
        return paths

    def html(self, png: bytes) -> str:
        import base64

        from .report import _CSS

        e = html.escape
        parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>techday bench leaderboard</title>"
                 f"<style>{_CSS}</style></head><body><h1>techday bench leaderboard</h1>",
                 f"<p>{len(self.runs)} run(s) merged, {len(self.rejected)} file(s) left out.</p>"]
        if png:
            parts.append(f"<img alt='roofline' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
        for tier in ("gpu", "cpu"):
            rankings = self.rankings(tier)
            if not rankings:
                continue
            parts.append(f"<h2>{'GPU runs' if tier == 'gpu' else 'CPU-tier runs (CPU figures, not GPU figures)'}</h2>")
            for key, rows in rankings.items():
                parts.append(f"<h3>{e(key)}</h3><table><tr><th>#</th><th>who</th><th>marks</th><th>device</th>"
                             "<th>impl</th>"
                             "<th>figure (median)</th><th>best</th><th>of limit</th></tr>")
                for row in rows:
                    frac = "" if row["fraction"] is None else f"{row['fraction']:.0%}"
                    marks = (" <i>(fixture)</i>" if row["fixture"] else "") + (
                        f" <i title='{e('; '.join(row['disputed']))}'>(disputed)</i>" if row["disputed"] else "") + (
                        f" <i title='{e('reads like: ' + ', '.join(row['lookalike']))}'>(look-alike)</i>"
                        if row["lookalike"] else "") + (
                        " <i title='above its physical limit (under the 105 % the board refuses)'>(above limit)</i>"
                        if row["above_limit"] else "")
                    # The device column names the row the board judged the run by, never the file's own words.
                    parts.append(f"<tr><td>{row['rank']}</td><td>{e(row['who'])}</td><td>{marks.strip()}</td>"
                                 f"<td>{e(row['model'])}</td>"
                                 f"<td>{e(row['impl'])}</td><td class='n'>{row['value']:,.1f} "
                                 f"{e(UNITS[row['metric']])}</td><td class='n'>{row['best']:,.1f}</td><td>{frac}</td></tr>")
                parts.append("</table>")
            parts.append("<h3>Per model: best and median run</h3><table><tr><th>model</th><th>kernel</th><th>runs</th>"
                         "<th>best</th><th>median</th></tr>")
            for model, kernels in self.per_model(tier).items():
                for key, s in kernels.items():
                    above = " <i>(above limit)</i>" if s["best_above_limit"] else ""
                    parts.append(f"<tr><td>{e(model)}</td><td>{e(key)}</td><td>{s['runs']}</td>"
                                 f"<td class='n'>{s['best']:,.1f} {e(UNITS[s['metric']])}{above}</td>"
                                 f"<td class='n'>{s['median']:,.1f}</td></tr>")
            parts.append("</table>")
        if self.rejected:
            parts.append("<h2>Left out</h2><ul>" + "".join(f"<li>{e(line)}</li>" for line in self.rejected_lines())
                         + "</ul>")
        parts.append("</body></html>")
        return "".join(parts)


# ---------------------------------------------------------------------------------------------


MAX_FOLDER_DEPTH = 8  # room/student/lab/results.json is 3 deep


# Why a link below a folder given is not followed. A link can make another's file, or the kit's own
# committed run, read as this participant's: the board reads what lies in the folder, nothing it points at.
LINK = ("a symbolic link: not followed (the board follows no link below a folder it is given: a link can pass "
        "another's file, or the kit's own run, off as this one)")
MAX_LINK_LINES = 50  # lines naming links, per board; the rest are counted in one line


class _Links:
    """The links met while searching: per participant (``whose``: the folder the link lies in, for a
    participant's own files), the first named and the rest counted; one line each for up to
    :data:`MAX_LINK_LINES` participants, then a count. A board-wide count alone let mallory's 50 links
    take every line, and eve's one link was only a number in "more links"."""

    def __init__(self):
        self.first: dict[str, Rejected] = {}
        self.count: dict[str, int] = {}
        self.more = 0

    def add(self, path: Path, whose: Path | str | None = None) -> None:
        key = str(whose if whose is not None else path)
        if key in self.first:
            self.count[key] += 1
        elif len(self.first) < MAX_LINK_LINES:
            self.first[key], self.count[key] = Rejected(path, LINK), 1
        else:
            self.more += 1

    def rejected(self) -> list[Rejected]:
        out = []
        for key, line in self.first.items():
            out.append(line)
            if self.count[key] > 1:
                out.append(Rejected(Path(key), f"{self.count[key] - 1:,} more symbolic links below this folder were "
                                               "not followed (only the first is named)"))
        if self.more:
            out.append(Rejected(Path(f"({self.more:,} more links)"), f"{self.more:,} more symbolic links below the "
                                                                     "folders given were not followed"))
        return out


def _json_files(root: Path, links: _Links | None = None, keep: int | None = None,
                flat: int | None = None) -> tuple[list[Path], list[Path], list[Rejected]]:
    """The ``*.json`` files under ``root`` (notebook checkpoints left out), walked with a list, not
    recursion, to :data:`MAX_FOLDER_DEPTH` folders deep; and the first folder past that depth below each
    first folder (one participant's deep folder must not stand for another's), if any
    (``Path.rglob`` recursed once per level: a submission 3,000 folders deep stopped the whole board
    with a RecursionError). Folders it cannot list come back as lines. No symbolic link below ``root``
    is followed, to a file or a folder: each one named ``*.json`` or leading to a folder is named in
    ``links``.

    ``keep``: below each first folder (a participant's), only the first ``keep`` files in path order are
    kept, the rest counted, not held: a participant's folder of a million empty ``*.json`` files held a
    million paths and sorted them before the cap of files read applied (200,000 empty files: 19.4 s and
    155 MB at peak here, now 3.9 s and 36 MB).

    ``flat``: of the files directly in ``root`` (each its own participant, so ``keep`` never bounded
    them), only the first ``flat`` in path order are kept, the rest counted in a line: 200,000 empty
    ``*.json`` in a shared folder were held and sorted whole (17.7 s and 230 MB here), though past the
    board's cap of files read in path order none could be read."""
    found: list[Path] = []
    kept: dict[str, list[Path]] = {}
    deep: dict[str | None, Path] = {}
    unreadable: list[Rejected] = []
    # Folders it cannot list, per first folder: the first named, the rest counted (a participant may set
    # 500 folders to mode 000: 500 lines buried the one other participant's line that mattered).
    locked: dict[str | None, int] = {}
    stack = [(root, 0, None)]
    while stack:
        folder, depth, top = stack.pop()
        try:
            with os.scandir(folder) as listing:
                for entry in listing:  # not listed whole first: a folder of a million names
                    too_deep = _json_entry(entry, depth, top, links, keep, found, kept, stack, flat)
                    if too_deep is not None:
                        deep.setdefault(top, too_deep)
        except OSError as exc:
            locked[top] = locked.get(top, 0) + 1
            if top is None or locked[top] == 1:
                unreadable.append(Rejected(folder, f"unreadable folder: {exc.strerror or exc}"))
            continue
    for top, n in locked.items():
        if top is not None and n > 1:
            unreadable.append(Rejected(root / top, f"{n - 1:,} more folders below this one could not be listed "
                                                   "(only the first is named)"))
    dropped = kept.pop(("dropped",), 0)
    if dropped:
        unreadable.append(Rejected(root, f"{dropped:,} more files directly in this folder (each its own participant), "
                                         f"past the first {flat:,} in path order, are not read: the board reads at "
                                         f"most {flat:,} files"))
    for files in kept.values():
        found += files
    return sorted(found), list(deep.values()), unreadable


def _json_entry(entry, depth, top, links, keep, found, kept, stack, flat=None) -> Path | None:
    """One entry of a folder :func:`_json_files` searches: a file kept, a folder to search, a link named;
    a folder too deep to search is returned."""
    try:
        if entry.is_symlink():
            if links is not None and (entry.name.endswith(".json") or entry.is_dir()):
                links.add(Path(entry.path), None if top is None else Path(entry.path).parents[depth - 1])
            return
        if entry.name.endswith(".json"):
            path = Path(entry.path)  # a folder so named too: it is answered as unreadable
            cap = keep if top is not None else flat
            if keep is None or cap is None:
                found.append(path)
            else:
                mine = kept.setdefault(top, [])
                if len(mine) < cap or path < mine[-1]:
                    bisect.insort(mine, path)
                    if len(mine) > cap and top is None:  # each its own participant: counted, for the line
                        kept[("dropped",)] = kept.get(("dropped",), 0) + 1
                    del mine[cap:]
                elif top is None:
                    kept[("dropped",)] = kept.get(("dropped",), 0) + 1
        if entry.is_dir(follow_symlinks=False):
            if entry.name == ".ipynb_checkpoints":
                return
            if depth + 1 > MAX_FOLDER_DEPTH:
                return Path(entry.path)
            stack.append((Path(entry.path), depth + 1, entry.name if top is None else top))
    except OSError:
        return None
    return None


def discover(paths: list[Path], lab: str) -> tuple[list[tuple[Path, str, tuple, tuple | None]], list[Rejected]]:
    """(file, who, participant, under) to read, and paths that hold nothing to read. ``who`` is the
    participant's name; ``participant`` says whose file it is, as far as the layout tells: a student of
    a ``submitted/`` tree, the first folder under a folder given (``room/alice/...``), else the file
    alone. A path given is taken as it is (a link the instructor names is the instructor's choice;
    ``under`` is None); below it, no symbolic link is followed, each one answered with a line, and
    ``under`` is ``(folder given, names below it)``: the file is read, and judged to lie, there, never
    where its path leads when it is read (:func:`.schema.read_document`)."""
    found: list[tuple[Path, str, tuple, tuple | None]] = []
    missing: list[Rejected] = []
    links = _Links()
    for path in paths:
        try:
            _discover_one(path, lab, found, missing, links)
        except OSError as exc:  # a folder the board may not list (permissions, a name too long) stops only itself
            missing.append(Rejected(path, f"unreadable: {exc.strerror or exc}"))
    return found, missing + links.rejected()


MAX_BESIDE_NAMED = 20     # entries named in the line about what a course root's reading leaves unread
MAX_BESIDE_VISITS = 10000  # names looked at, in all, to find what beside submitted/ holds results files


def _results_name(name: str) -> bool:
    """A name a results file may have: ``*.json``, but not the board's own output (an instructor's
    ``build/leaderboard/`` inside the course root is not a room's participant)."""
    return name.endswith(".json") and name != "leaderboard.json"


def _holds_json(folder: str, budget: list[int], depth: int = 3) -> bool:
    """Whether ``folder`` holds a ``*.json`` file within ``depth`` levels (no link followed), looking
    at no more names than ``budget[0]`` (spent as it goes)."""
    stack = [(folder, 0)]
    while stack and budget[0] > 0:
        here, d = stack.pop()
        try:
            with os.scandir(here) as listing:
                for entry in listing:
                    budget[0] -= 1
                    if budget[0] <= 0:
                        return False
                    if entry.is_symlink():
                        continue
                    if _results_name(entry.name) and entry.is_file(follow_symlinks=False):
                        return True
                    if d + 1 < depth and entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, d + 1))
        except OSError:
            continue
    return False


def _beside_submitted(root: Path) -> list[Rejected]:
    """A folder given that holds ``submitted/`` is read as a course root: its ``submitted/`` tree only.
    What else it holds that a room would have read (a ``*.json`` file, or a folder other than nbgrader's
    steps with one a few levels down) is named in one line: in a room of participants' folders, one
    participant who named hers ``submitted`` (with ``mallory/08-measure-your-gpu/`` inside) had the room
    read as a course root, and every other participant's folder was left unread without a word."""
    from ..course.layout import STEPS

    names, more, budget = [], 0, [MAX_BESIDE_VISITS]
    try:
        with os.scandir(root) as listing:
            for entry in listing:
                if entry.name.startswith(".") or entry.name in STEPS or entry.is_symlink():
                    continue
                if (_results_name(entry.name) and entry.is_file(follow_symlinks=False)) or (
                        entry.is_dir(follow_symlinks=False) and _holds_json(entry.path, budget)):
                    if len(names) < MAX_BESIDE_NAMED:
                        bisect.insort(names, entry.name)
                    else:
                        more += 1
    except OSError:
        return []
    if not names:
        return []
    shown = ", ".join(inert(n) for n in names) + (f" and {more:,} more" if more else "")
    return [Rejected(root, f"read as a course root (its submitted/ tree only): {shown} beside submitted/ "
                           f"{'holds' if len(names) + more == 1 else 'hold'} results files that are not read. If this "
                           "is a room of participants' folders, one of them is named 'submitted': give the folders "
                           "one by one")]


def _discover_one(path: Path, lab: str, found: list, missing: list, links: _Links) -> None:
    link = _others_link(path)
    if link is not None:
        missing.append(Rejected(path, f"{'' if link == Path(path).absolute() else f'{link} is '}a symbolic link "
                                      "another user made: not followed, though named (a shell glob names what "
                                      "participants made; the board follows only the links its own user made: "
                                      "name the path it leads to, if you trust it)"))
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        missing.append(Rejected(path, "a symbolic link to nothing" if os.path.islink(path) else "does not exist"))
        return
    if not stat.S_ISDIR(st.st_mode):
        # A file of any kind (a FIFO, a device behind a link): reading it says what it is.
        found.append((path, path.stem, ("file", str(path)), None))
        return
    sub = path / "submitted"
    if sub.is_symlink():
        links.add(sub)
        return
    submitted = sub if sub.is_dir() else (path if path.name == "submitted" else None)
    if submitted is sub:
        missing += _beside_submitted(path)
    if submitted is None:
        files, deep, unreadable = _json_files(path, links, keep=MAX_FILES_PER_PARTICIPANT + 1, flat=MAX_FILES)
        missing += unreadable
        missing += [Rejected(d, f"folders nested more than {MAX_FOLDER_DEPTH} deep are not searched") for d in deep]
        if not files:
            missing.append(Rejected(path, "no *.json result file in this folder"))
        for f in files:
            names = f.relative_to(path).parts
            if f.parent == path:
                found.append((f, f.stem, ("file", str(f)), (path, names)))
            else:
                found.append((f, names[0], ("folder", str(path), names[0]), (path, names)))
        return
    for student in sorted(submitted.iterdir()):
        # A student's own folder may be one the board cannot read (a submission's permissions are the
        # student's): that student's line says so, and every other student is still merged.
        try:
            if student.is_symlink():
                links.add(student)
                continue
            if not student.is_dir():
                continue
            lab_dir = student / lab
            if lab_dir.is_symlink():
                links.add(lab_dir)
                continue
            if not lab_dir.is_dir():
                continue
            # The first files only, counted without a list: a lab folder of a million files costs a
            # pass over its names, not a million paths held and a million lines printed.
            count, files = 0, []
            for f in lab_dir.glob("*.json"):
                if f.is_symlink():
                    links.add(f, lab_dir)
                    continue
                count += 1
                if len(files) <= MAX_FILES_PER_PARTICIPANT or f < files[-1]:
                    bisect.insort(files, f)
                    del files[MAX_FILES_PER_PARTICIPANT + 1:]
        except OSError as exc:
            missing.append(Rejected(student, f"{student.name}'s folder is unreadable: {exc.strerror or exc}"))
            continue
        if not files:
            missing.append(Rejected(lab_dir, f"{student.name} submitted {lab} without a results file"))
        if count > MAX_FILES_PER_PARTICIPANT:
            missing.append(Rejected(lab_dir, f"{student.name} handed in {count:,} results files; only the "
                                             f"first {MAX_FILES_PER_PARTICIPANT} are read"))
        found += [(f, student.name, ("student", str(submitted), student.name),
                   (submitted, (student.name, *Path(lab).parts, f.name))) for f in files[:MAX_FILES_PER_PARTICIPANT]]


def _digest(doc: dict) -> str:
    """The results' figures and summaries, without what version 2 adds beside them (each figure's
    repetitions and host times): the kit's version-1 run with samples made up to fit its summaries is
    still "the same results"."""
    def bare(r):
        if not isinstance(r, dict):
            return r
        r = {k: v for k, v in r.items() if k != "wall"}
        if isinstance(r.get("seconds"), dict):
            r["seconds"] = {k: v for k, v in r["seconds"].items() if k not in ("samples", "audit")}
        return r

    results = doc.get("results")
    results = [bare(r) for r in results] if isinstance(results, list) else results
    return hashlib.sha256(json.dumps(results, sort_keys=True).encode()).hexdigest()


NEAR = 0.005        # every common figure within 0.5 %: a copy with its values nudged
SCALED = 0.0005     # or every figure off by the same factor (log-ratio spread under 0.05 %): a rescaled copy
MIN_COMMON = 3      # figures two runs must share before they are compared
MIN_SCALED = 4      # and before a common factor means anything


def by_rank(sig: dict[str, float]) -> dict[str, float]:
    """A signature keyed ``"<metric>:<bytes or FLOPs> <kernel> <implementation>"`` with the names
    dropped: per metric and count, the figures largest first (``"gbs:1509949440 #1"``, ``#2``, ...).
    Zoe's figures handed in with each kernel's Numba CUDA and CuPy labels swapped, or her add as a triad
    (the same bytes), and every time nudged by 0.2 % (so no time is replayed), differ from hers name by
    name by the gap between the implementations; ranked, they are hers within 0.2 %. Sorting moves no
    figure further from its counterpart than the figures themselves are, so a copy
    :func:`near_duplicate` catches by name it catches by rank too; the figures of honest runs stay as
    far apart as their noisiest figures are."""
    groups: dict[str, list[float]] = {}
    for key, v in sig.items():
        groups.setdefault(key.split(" ", 1)[0], []).append(v)
    return {f"{g} #{i}": v for g, vs in groups.items() for i, v in enumerate(sorted(vs, reverse=True), 1)}


def relabelled(a: dict[str, float], b: dict[str, float]) -> str | None:
    """Why ranked signature ``a`` (:func:`by_rank`) looks like a copy of ``b`` under other names."""
    why = near_duplicate(a, b)
    return why and f"relabelled copy (figures compared by rank within equal counts, whatever they are named), {why}"


def near_duplicate(a: dict[str, float], b: dict[str, float]) -> str | None:
    """Why run signature ``a`` looks like a copy of ``b`` (None when it does not).

    Two honest runs time every kernel independently, so their ratios scatter by the run-to-run noise
    (about 0.5 % to several % per kernel, and far more for launch latency and transfers). A copy keeps
    them all, nudged within a fraction of a percent or scaled by one factor."""
    common = sorted(set(a) & set(b))
    if len(common) < MIN_COMMON:
        return None
    logs = [math.log(a[k] / b[k]) for k in common]
    worst = max(abs(x) for x in logs)
    if worst <= NEAR:
        return f"near-duplicate: all {len(common)} timed figures within {worst:.2%} of"
    mean = sum(logs) / len(logs)
    spread = math.sqrt(sum((x - mean) ** 2 for x in logs) / len(logs))
    if len(common) >= MIN_SCALED and spread <= SCALED:
        return f"rescaled copy: all {len(common)} timed figures differ by the same factor ({math.exp(mean):.4f}) from"
    return None


# Files read per participant: a few runs each is plenty, and every merged run is compared with every
# other (a student's folder of 10,000 valid runs would keep the board busy for hours).
MAX_FILES_PER_PARTICIPANT = 8

MIN_REPLAYED = 2    # figures whose every recorded time another run holds too: replayed, not measured


def replayed(a: dict[str, tuple], b: dict[str, tuple]) -> str | None:
    """Why run ``a`` carries figures of ``b`` (None when it does not): at least :data:`MIN_REPLAYED`
    figures with the same median, fastest and slowest time, spread and repetitions as a figure of ``b``,
    under whatever kernel and implementation ``a`` names it (matched by its times alone: zoe's figures
    handed in with the Numba CUDA and CuPy labels of each kernel swapped, or her add as a triad, which
    counts the same bytes, were matched name by name and passed). A copy of only a few figures, or of a
    few beside the copier's own, escapes :func:`near_duplicate`; this catches it as long as the times
    are kept (see :meth:`Run.times`: edited, they are not). CUDA-event times are quantized (one run's add
    and triad can share a median), so one figure alone is not taken for a copy."""
    theirs = set(b.values())
    same = sorted(k for k, t in a.items() if t in theirs)
    if len(same) >= MIN_REPLAYED:
        return f"replayed figures: {len(same)} timed figures ({', '.join(same[:3])}) carry every recorded time of"
    return None


# The figures every full run of a tier has (the suite's own implementations, in four families whose
# run-to-run noise differs): the keys of the near-duplicate index (:class:`_Index`).
ANCHORS = {"gpu": ("stream.triad numba-cuda", "reduction.sum numba-cuda", "transpose.naive numba-cuda",
                   "latency.empty-launch numba-cuda"),
           "cpu": ("stream.triad numba-cpu", "reduction.sum numpy", "transpose.naive numba-cpu", "stream.triad numpy")}


class _Logs:
    """One tier's merged runs as one matrix of log figures (a row per run, a column per figure, NaN where
    a run lacks it): what :meth:`near` compares a new run with in one pass, not one run at a time."""

    def __init__(self):
        import numpy as np

        self.cols: dict[str, int] = {}
        self.row: dict[int, int] = {}  # run -> row
        self.m = np.full((64, 64), np.nan)

    def add(self, i: int, sig: dict[str, float]) -> None:
        import numpy as np

        for k in sig:
            if k not in self.cols:
                self.cols[k] = len(self.cols)
        rows, cols = self.m.shape
        if len(self.row) >= rows or len(self.cols) > cols:
            grown = np.full((max(rows, 2 * (len(self.row) + 1)), max(cols, 2 * len(self.cols))), np.nan)
            grown[:rows, :cols] = self.m
            self.m = grown
        r = self.row[i] = len(self.row)
        for k, v in sig.items():
            if v > 0:
                self.m[r, self.cols[k]] = math.log(v)

    def near(self, sig: dict[str, float], runs: list[int]) -> list[int]:
        """Those of ``runs`` that :func:`near_duplicate` could match to ``sig``: at least
        :data:`MIN_COMMON` common figures, all within :data:`NEAR`, or :data:`MIN_SCALED` off by one
        factor within :data:`SCALED` (thresholds loosened by one part in a thousand, so that rounding
        never drops one: each is then compared in full)."""
        import numpy as np

        if not runs:
            return []
        v = np.full(self.m.shape[1], np.nan)
        for k, x in sig.items():
            if k in self.cols and x > 0:
                v[self.cols[k]] = math.log(x)
        d = self.m[[self.row[j] for j in runs]] - v
        have = ~np.isnan(d)
        n = have.sum(axis=1)
        d = np.where(have, d, 0.0)
        worst = np.abs(d).max(axis=1)
        mean = d.sum(axis=1) / np.maximum(n, 1)
        spread = np.sqrt(np.where(have, (d - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(n, 1))
        loose = 1.001
        hit = (n >= MIN_COMMON) & ((worst <= NEAR * loose) | ((n >= MIN_SCALED) & (spread <= SCALED * loose)))
        return [j for j, h in zip(runs, hit.tolist()) if h]


class _Index:
    """The merged runs, indexed so that a new run is compared in full only with the runs that could be
    its copy, not with every run merged (pairwise comparison grew with the square of the room).

    Exact, not a heuristic: every run :func:`near_duplicate` or :func:`replayed` would match is among
    the candidates. A replay shares a figure's every recorded time (an exact key). A near-duplicate or
    rescaled copy has log-ratios to its original that are nearly one constant over the common figures
    (within ``NEAR`` of 0, or a spread of ``SCALED`` about their mean, so no figure further than
    ``SCALED * sqrt(n)`` from it); so for any two common figures i, j, the difference
    ``log a_i - log a_j`` is the same in both runs within ``W = max(2 NEAR, 2 SCALED sqrt(n))``. Runs are
    grouped by which of their tier's :data:`ANCHORS` they hold; a group of two anchors or more keeps
    sorted lists of those differences, one per pair of anchors. A new run is compared, in each group
    with which it shares two anchors or more, with the runs inside the narrowest window of a shared
    pair, filtered on the other shared pairs; and with every run of the other groups (sharing fewer
    than two anchors). A partial run lacking one anchor is indexed too: a room of runs without one
    family (a machine without Numba, say) used to be compared pair by pair (300 such H200 runs: 44,850
    full comparisons, 3.2 s more; 2,000 of them about two and a half minutes). The runs the anchors
    cannot narrow (sharing fewer than two with the new run) are screened in one vectorised pass over
    their log figures (:class:`_Logs`) and compared in full only where the rules could match: a room
    of runs each holding one anchor (2,000 files, every other figure well formed) was compared pair by
    pair, 1,999,000 full comparisons, 189 s here."""

    def __init__(self):
        self.by_digest: dict[str, Run] = {}
        self.runs: list[Run] = []
        self.shapes: list[dict | None] = []
        self.odd: dict[str, list[int]] = {}                     # tier -> runs holding fewer than two anchors
        self.logs: dict[str, _Logs] = {}                        # tier -> every run's log figures
        self.ranked: dict[str, _Logs] = {}                      # tier -> every run's log figures by rank
        self.tier_runs: dict[str, list[int]] = {}               # tier -> runs
        self.groups: dict[tuple, list[int]] = {}                # (tier, anchors held) -> runs
        self.pairs: dict[tuple, list[tuple[float, int]]] = {}   # (tier, anchors held, pair) -> sorted (difference, run)
        self.replays: dict[tuple, list[int]] = {}               # (tier, times) -> runs (under any figure's name)
        self.compared = 0                                       # full comparisons made (for the tests)
        # Figures one participant's merged files share, every recorded time, with another participant's:
        # (participant, other) -> {figure: (the participant's run, the other's run)}; and with a kit run:
        # (participant, kit run's name) -> {figure: the participant's run}.
        self.shared: dict[tuple, dict[str, tuple[Run, Run]]] = {}
        self.kit_pasted: dict[tuple, dict[str, Run]] = {}

    @staticmethod
    def _shape(run: Run) -> dict | None:
        """(anchor, anchor) -> the difference of their log figures, over the anchors the run holds (None
        for fewer than two)."""
        sig = run.signature()
        held = [k for k in ANCHORS.get(run.tier, ()) if k in sig and sig[k] > 0]
        if len(held) < 2:
            return None
        logs = {k: math.log(sig[k]) for k in held}
        return {(a, b): logs[a] - logs[b] for i, a in enumerate(held) for b in held[i + 1:]}

    @staticmethod
    def _held(shape: dict) -> tuple:
        return tuple(dict.fromkeys(k for pair in shape for k in pair))

    def add(self, run: Run) -> None:
        i = len(self.runs)
        self.runs.append(run)
        shape = self._shape(run)
        self.shapes.append(shape)
        self.logs.setdefault(run.tier, _Logs()).add(i, run.signature())
        self.ranked.setdefault(run.tier, _Logs()).add(i, run.ranked())
        self.tier_runs.setdefault(run.tier, []).append(i)
        if shape is None:
            self.odd.setdefault(run.tier, []).append(i)
        else:
            held = self._held(shape)
            self.groups.setdefault((run.tier, held), []).append(i)
            for pair, d in shape.items():
                bisect.insort(self.pairs.setdefault((run.tier, held, pair), []), (d, i))
        for whom, mine in self._replays_by_whom(run).items():
            for key, j in mine.items():
                self.shared.setdefault((_whose(run), whom), {})[key] = (run, self.runs[j])
                self.shared.setdefault((whom, _whose(run)), {})[key] = (self.runs[j], run)
        for key, t in run.times().items():
            self.replays.setdefault((run.tier, t), []).append(i)

    def candidates(self, run: Run) -> list[int]:
        tier = run.tier
        out: set[int] = set()
        unnarrowed = list(self.odd.get(tier, ()))  # screened in one pass below
        shape = self._shape(run)
        w = max(2 * NEAR, 2 * SCALED * math.sqrt(max(1, len(run.signature())))) + 1e-9
        for (t, held), members in self.groups.items():
            if t != tier:
                continue
            shared = [pair for pair in shape if pair[0] in held and pair[1] in held] if shape else []
            if not shared:  # fewer than two anchors in common: nothing to narrow by
                unnarrowed += members
                continue
            windows = []
            for pair in shared:
                lst, d = self.pairs[(tier, held, pair)], shape[pair]
                lo, hi = bisect.bisect_left(lst, (d - w, -1)), bisect.bisect_right(lst, (d + w, len(self.runs)))
                windows.append((hi - lo, lo, hi, pair))
            _, lo, hi, pair = min(windows)
            for _, j in self.pairs[(tier, held, pair)][lo:hi]:
                if all(abs(shape[q] - self.shapes[j][q]) <= w for q in shared):
                    out.add(j)
        if unnarrowed:
            out.update(self.logs[tier].near(run.signature(), unnarrowed))
        seen: dict[int, int] = {}
        for key, t in run.times().items():
            for j in self.replays.get((tier, t), ()):
                seen[j] = seen.get(j, 0) + 1
        out.update(j for j, n in seen.items() if n >= MIN_REPLAYED)
        return sorted(out)

    def _replays_by_whom(self, run: Run) -> dict[tuple, dict[str, int]]:
        """Other participants -> {figure: their merged run} whose every recorded time ``run`` holds."""
        out: dict[tuple, dict[str, int]] = {}
        for key, t in run.times().items():
            for j in self.replays.get((run.tier, t), ()):
                whom = _whose(self.runs[j])
                if whom != _whose(run):
                    out.setdefault(whom, {}).setdefault(key, j)
        return out

    def pasted(self, run: Run) -> tuple[Run | None, str | None, list[Run]]:
        """The run of another participant whose figures ``run`` and this participant's files merged
        already replay together, at least :data:`MIN_REPLAYED` of them (each file one figure: every file
        alone is under the rule, and 8 files put 8 of zoe's figures, tied with hers, on the board)."""
        for whom, mine in self._replays_by_whom(run).items():
            before = self.shared.get((_whose(run), whom), {})
            if len(before.keys() | mine.keys()) >= MIN_REPLAYED:
                other = self.runs[next(iter(mine.values()))]
                theirs = [b for _, b in before.values()] + [self.runs[j] for j in mine.values()]
                theirs = [r for r in {id(r): r for r in theirs}.values() if r is not other]
                return other, _pasted_why(run, before.keys() | mine.keys(), [a for a, _ in before.values()],
                                          theirs), theirs
        return None, None, []

    def copy_of(self, run: Run) -> tuple[Run | None, str | None]:
        """The first merged run (in path order) that ``run`` copies, and why."""
        sig, times = run.signature(), run.times()
        for j in self.candidates(run):
            other = self.runs[j]
            self.compared += 1
            why = near_duplicate(sig, other.signature()) or replayed(times, other.times())
            if why:
                return other, why
        # Under other names: every run of the tier screened in one pass over the figures by rank.
        ranked = run.ranked()
        logs = self.ranked.get(run.tier)
        for j in logs.near(ranked, self.tier_runs[run.tier]) if logs else ():
            other = self.runs[j]
            self.compared += 1
            why = relabelled(ranked, other.ranked())
            if why:
                return other, why
        return None, None


def _whose(run: Run) -> tuple:
    """Whose run it is (a file alone is its own participant)."""
    return run.participant or (str(run.path),)


def _pasted_why(run: Run, keys: set, mine: list[Run], theirs: list[Run]) -> str:
    """Why ``run`` is left out: with ``mine`` (its participant's files merged already), it carries every
    recorded time of ``keys`` figures of another participant's files (``theirs`` and the one named after
    this reason) or of a kit run: each file under :data:`MIN_REPLAYED`, together at it or above."""
    def names(runs):
        return ", ".join(dict.fromkeys(inert(r.path.name) for r in runs[:3]))

    ours = f" with {run.who}'s {names(mine)} merged already" if mine else ""
    also = f" (and {names(theirs)})" if theirs else ""
    return (f"replayed figures, one file at a time: this file{ours} carries every recorded time of {len(keys)} "
            f"timed figures ({', '.join(sorted(keys)[:3])}){also} of")


def _copy_of(board: Leaderboard | None, run: Run, kept: Run, reason: str) -> None:
    """Leave ``run`` out as a copy of ``kept`` (no board: left out already); a copy by another
    participant puts ``kept`` in dispute."""
    if board is not None:
        board.rejected.append(Rejected(run.path, reason))
    if run.participant != kept.participant:
        kept.dispute(lambda: f"{run.who} handed in the same figures ({inert(run.path.name)})")


FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "bench"


def _board_users() -> set[int]:
    """Who may have made what the board trusts as named by the instructor: the user running the board,
    and root (empty where users cannot be told apart: Windows)."""
    getuid = getattr(os, "getuid", None)
    return {getuid(), 0} if getuid else set()


def _others_link(path: Path) -> Path | None:
    """The first part of a path named on the command line (the file itself or a folder above it) that
    is a symbolic link another user made (None if none). A shell glob (``submitted/*/08-.../results.json``)
    names on the command line what participants made: mallory's ``results.json``, a link to the
    instructor's own run in a folder only the instructor reads, was followed by the board running as the
    instructor, and ranked and published as hers."""
    users = _board_users()
    if not users:
        return None
    p = Path(path).absolute()  # not normalised: "link/.." is walked through the link, as the kernel does
    for q in (p, *p.parents):
        try:
            st = os.lstat(q)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in users:
            return q
    return None


def _board_owns(path: Path) -> bool:
    """Whether the file at ``path`` belongs to the board's user (or root): a file named on the command
    line that a participant owns may have been named by a shell glob, not by the instructor."""
    users = _board_users()
    try:
        return not users or os.stat(path).st_uid in users
    except OSError:
        return False


def _fixture_allowed(lies: Path | None, named: bool) -> bool:
    """A test fixture (``"fixture": true``) is ranked, marked, only where the instructor named the file
    itself (one the board's user owns: :func:`_board_owns`) or where the kit keeps its own
    (``tests/fixtures/bench``): never from a room's folders, where a participant could hand one in.
    ``lies``: where the file was listed (:func:`_lies`)."""
    return named or (lies is not None and lies.parent == FIXTURES)


def _lies(path: Path, under: tuple | None) -> Path | None:
    """Where the file read lies, for deciding whether it is the kit's own (a fixture, a committed run):
    below a folder given, the folder's real path and the names listed below it, fixed when it was
    listed and read through no link (a participant who turned her lab folder into a link to the kit's
    ``results/`` after the read made the board find the kit's file at her path); a path named alone,
    its real path unless it is itself a link (a link to the kit's file is not the kit's file)."""
    try:
        if under is not None:
            return Path(os.path.realpath(under[0])).joinpath(*under[1])
        return None if path.is_symlink() else Path(os.path.realpath(path))
    except OSError:
        return None


def _admit(board: Leaderboard, path: Path, who: str, participant: tuple, by_id: dict, index: "_Index",
           plans: set, named: bool = False, under: tuple | None = None) -> None:
    lies = _lies(path, under)
    try:
        doc = read_document(path, under)
        # Version 1 (no repetitions behind the figures) only as the kit's own committed runs, where they lie;
        # a verbatim copy of one elsewhere is named for what it is.
        legacy = lies is not None and any(lies == kit.path for kit in kit_runs())
        if not legacy and isinstance(doc, dict) and doc.get("schema") == LEGACY:
            kit = next((k for k in kit_runs() if k.digest == _digest(doc)), None)
            if kit is not None:
                board.rejected.append(Rejected(path, f"a copy of the course kit's own run: the same results as {kit.name}"))
                return
        run = Run(path, verify(doc, plans, legacy=legacy), inert(who), participant, name=who)
    except (ReadError, Refused) as exc:
        board.rejected.append(Rejected(path, str(exc)))
        return
    if doc.get("fixture") and not _fixture_allowed(lies, named and _board_owns(path)):
        board.rejected.append(Rejected(path, "a test fixture (\"fixture\": true), not a measurement: fixtures are "
                                             "never ranked from a room's folders"))
        return
    # A copy is decided by its figures, never by its run_id alone: an id is a string anyone can paste,
    # and the first file in path order would otherwise evict the other.
    digest = _digest(doc)
    first = index.by_digest.get(digest)
    if first is not None:
        same_id = "the same run_id" if first.doc["run_id"] == doc["run_id"] else "another run_id"
        _copy_of(board, run, first, f"duplicate run: the same results as {first.path} under {same_id}")
        return
    other, why = index.copy_of(run)
    also: list[Run] = []
    if other is None:
        other, why, also = index.pasted(run)
    if other is not None:
        _copy_of(board, run, other, f"duplicate run: {why} {other.path}")
        for kept in also:  # the other files its figures were replayed from: each row says so
            _copy_of(None, run, kept, "")
        return
    sig, times = run.signature(), run.times()
    kit_id = None
    kit_pasted: dict[str, set] = {}
    for kit in kit_runs():
        if kit.tier != run.tier or lies == kit.path:
            continue
        kit_times = set(kit.times.values())  # by the times alone, under any figure's name (see replayed)
        same = {k for k, t in times.items() if t in kit_times}
        before = index.kit_pasted.get((_whose(run), kit.name), {})
        why = ("the same results as" if digest == kit.digest
               else near_duplicate(sig, kit.signature) or replayed(times, kit.times)
               or relabelled(run.ranked(), kit.ranked)
               or (len(same | before.keys()) >= MIN_REPLAYED
                   and _pasted_why(run, same | before.keys(), [r for r in before.values()], [])))
        if why:
            board.rejected.append(Rejected(path, f"a copy of the course kit's own run: {why} {kit.name}"))
            return
        if same:
            kit_pasted[kit.name] = same
        if doc["run_id"] == kit.run_id:
            kit_id = kit
    if kit_id is not None:
        run.dispute(f"shares run_id {doc['run_id'][:12]} with the course kit's own run {kit_id.name}: "
                    "figures differ")
    for twin in by_id.get(doc["run_id"], ()):
        # Two files, one run_id, other figures: both kept, both marked, for the instructor to judge.
        twin.dispute(lambda: f"shares run_id {doc['run_id'][:12]} with {run.who} ({inert(path.name)}): figures differ")
        run.dispute(lambda: f"shares run_id {doc['run_id'][:12]} with {twin.who} ({inert(twin.path.name)}): "
                            "figures differ")
    by_id.setdefault(doc["run_id"], []).append(run)
    index.by_digest[digest] = run
    run.verified.doc = _kept(doc)
    board.runs.append(run)
    index.add(run)
    for name, same in kit_pasted.items():
        index.kit_pasted.setdefault((_whose(run), name), {}).update(dict.fromkeys(same, run))


@dataclass(frozen=True)
class KitRun:
    """One of the runs the course kit ships (``benchmarks/results``): every student has these files."""

    path: Path
    name: str
    tier: str
    run_id: str
    digest: str
    signature: dict
    times: dict
    ranked: dict = field(default_factory=dict)  # by_rank of the signature keyed with each figure's counts


@functools.lru_cache(maxsize=1)
def kit_runs() -> tuple[KitRun, ...]:
    """The real runs committed with the kit. A room's file that copies one (under a new run id, nudged,
    or a few of its figures) is not a run of its own: the kit's H200 run would otherwise top a room of
    laptops. Read from the committed files' own figures, which the harness wrote from the counts."""
    from .families import kit_benchmarks_dir

    root = kit_benchmarks_dir() / "results"  # the kit's own, never one found from the working directory
    out = []
    for f in (_json_files(root)[0] if root.is_dir() else []):
        try:
            doc = read_document(f)
        except ReadError:
            continue
        if not isinstance(doc, dict) or doc.get("schema") not in (SCHEMA_READ, LEGACY) or not isinstance(doc.get("results"), list):
            continue
        sig, times, counted = {}, {}, {}
        for r in doc["results"]:
            try:
                if r.get("status") != "ok":
                    continue
                key, sec = f"{r['family']}.{r['kernel']} {r['impl']}", r["seconds"]
                sig[key] = 1 / r["value"] if r["metric"] == "us" else float(r["value"])
                amount = {"gbs": r.get("bytes"), "gflops": r.get("flops")}.get(r["metric"])
                counted[f"{r['metric']}:{amount} {key}"] = sig[key]
                times[key] = (sec["median"], sec["min"], sec["max"], sec.get("spread"), sec["reps"])
            except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError):
                continue
        name = f.relative_to(root.parent.parent).as_posix()  # benchmarks/results/...
        out.append(KitRun(f, name, doc.get("tier"), doc.get("run_id"), _digest(doc), sig, times, by_rank(counted)))
    return tuple(out)


def _kept(doc: dict) -> dict:
    """What the board keeps of a merged file: the few fields it shows (the figures are recomputed
    already). A valid file may be 2 MiB of notes and error rows; kept whole, a folder of them held
    2 MB of memory per run."""
    env = doc["environment"]
    gpu = env.get("gpu")
    return {"run_id": doc["run_id"], "tier": doc["tier"], "mode": doc["mode"], "fixture": bool(doc.get("fixture")),
            "environment": {"gpu": {"name": gpu["name"]} if gpu else None, "device": env.get("device", "CPU")}}


# Files one board reads in all (each participant's first few, in path order): enough for any room.
# Past it, the rest are left out and named; a board of 2,000 files takes about a minute here.
MAX_FILES = 2000


def build_leaderboard(paths: list[Path], lab: str = "08-measure-your-gpu") -> Leaderboard:
    """Merge result files. Each file is read within caps, validated, recomputed and compared with the
    runs already merged; any problem (or any failure at all while doing so) leaves that file out with
    its reason and the board goes on."""
    files, rejected = discover(paths, lab)
    named = {str(p) for p in paths}
    board = Leaderboard(rejected=rejected)
    by_id: dict[str, list[Run]] = {}
    index = _Index()
    plans: set = set()
    per_who: dict[tuple, int] = {}
    read = 0
    past: list[tuple[Path, str]] = []
    for path, who, participant, under in files:
        per_who[participant] = per_who.get(participant, 0) + 1
        if per_who[participant] == MAX_FILES_PER_PARTICIPANT + 1:  # one line for all the rest
            board.rejected.append(Rejected(path.parent, f"{who} handed in more than "
                                                        f"{MAX_FILES_PER_PARTICIPANT} results files; the rest "
                                                        "(from this one on) are not read"))
        if per_who[participant] > MAX_FILES_PER_PARTICIPANT:
            continue
        if read >= MAX_FILES:
            past.append((path, who))
            continue
        read += 1
        try:
            _admit(board, path, who, participant, by_id, index, plans, named=str(path) in named, under=under)
        except Exception as exc:  # one file never stops the board; the reason says it was the board's fault
            board.rejected.append(Rejected(path, f"internal error while reading this file ({type(exc).__name__}); "
                                                 "left out"))
    board.comparisons = index.compared
    for run in board.runs:
        if run.disputed_more:
            run.disputed.append(f"and {run.disputed_more:,} more")
    _names_apart(board)
    if past:
        whose = list(dict.fromkeys(w for _, w in past))
        more = f" and {len(whose) - 20:,} more" if len(whose) > 20 else ""
        board.rejected.append(Rejected(past[0][0], f"not read: the board reads at most {MAX_FILES:,} files; this one "
                                                   f"and the {len(past) - 1:,} after it in path order are left out "
                                                   f"(of {', '.join(whose[:20])}{more})"))
    return board


def _where(participant: tuple) -> str:
    """Where a participant's files were found, shown beside a name another participant shares."""
    kind, *rest = participant
    return inert(rest[0] if kind == "file" else os.path.join(*rest) + os.sep)




def _names_apart(board: Leaderboard) -> None:
    """No two participants read alike on the board. Two shown under one name (``room/zoe.json`` and
    ``room/zoe/``) are each shown with where their files lie; names that read alike (:func:`skeleton`:
    ``alice`` and ``aIice``, ``Alice``, a Cyrillic look-alike, NFC and NFD) are each marked with the
    others' names, on every row and in the JSON, for the instructor to judge."""
    by_who: dict[tuple, list[Run]] = {}
    for run in board.runs:
        by_who.setdefault(run.participant or ("file", str(run.path)), []).append(run)
    by_shown: dict[str, list[tuple]] = {}
    for p, runs in by_who.items():
        by_shown.setdefault(runs[0].who, []).append(p)
    for name, ps in by_shown.items():
        if len(ps) > 1:
            for p in ps:
                for run in by_who[p]:
                    run.who = f"{name} ({_where(p)})"
    by_look: dict[str, list[tuple]] = {}
    for p, runs in by_who.items():
        by_look.setdefault(skeleton(runs[0].name or runs[0].who), []).append(p)
    for ps in by_look.values():
        if len(ps) > 1:
            names = sorted((by_who[q][0].who, q) for q in ps)
            for p in ps:
                # At most a few named on each row: 2,000 look-alike participants each naming all the
                # others would write 2,000 x 2,000 names on every kernel's rows. One name in two places
                # (two results.json named alone) is told apart by where, above, not marked.
                mine = by_who[p][0].name
                others = [w for w, q in names if q != p and by_who[q][0].name != mine]
                if not others:
                    continue
                more = [f"and {len(others) - MAX_LOOKALIKES:,} more"] if len(others) > MAX_LOOKALIKES else []
                for run in by_who[p]:
                    run.lookalike = others[:MAX_LOOKALIKES] + more
