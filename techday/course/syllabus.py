"""The course layout: where the repository is, which labs exist, and what ``course/`` says of them."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class CourseError(ValueError):
    """The repository or the syllabus is not in a usable state."""


def find_root(start: Path | None = None) -> Path:
    """The repository root: ``$TECHDAY_ROOT``, else the nearest folder above ``start`` (or the
    working directory) holding ``course/syllabus.toml``, else the checkout this package lives in."""
    env = os.environ.get("TECHDAY_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / "course" / "syllabus.toml").is_file():
            raise CourseError(f"TECHDAY_ROOT={env} has no course/syllabus.toml")
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "course" / "syllabus.toml").is_file():
            return candidate
    pkg_root = Path(__file__).resolve().parents[2]  # techday/<subpackage>/<module>.py
    if (pkg_root / "course" / "syllabus.toml").is_file():
        return pkg_root
    raise CourseError("cannot find the course: run inside the repository or set TECHDAY_ROOT")


@dataclass
class LabSpec:
    id: str
    title: str
    track: str
    minutes: int
    slot: str = ""
    title_ko: str = ""
    timeout_s: dict = field(default_factory=lambda: {"ci": 300, "full": 900})
    # Autograding (techday grade autograde): seconds per cell, per scale (nbgrader's 30 s default is
    # too short for a JIT compile on a GPU or a simulator run), and the memory limit of the sandbox.
    cell_timeout_s: dict = field(default_factory=lambda: {"ci": 120, "full": 300})
    memory_mb: int = 4096
    # Processes and threads of everything in the sandbox (a fork bomb stops there): Numba's CUDA
    # simulator runs a block's threads as Python threads (up to 1024), and NumPy, Numba and PyTorch
    # start a pool of threads per core.
    max_processes: int = 2048

    def timeout(self, scale: str) -> int:
        return int(self.timeout_s.get(scale, max(self.timeout_s.values())))

    def cell_timeout(self, scale: str) -> int:
        """Seconds one cell may run when graded; never more than the whole notebook's limit."""
        value = int(self.cell_timeout_s.get(scale, max(self.cell_timeout_s.values())))
        return min(value, self.timeout(scale))


@dataclass
class TrackSpec:
    id: str
    title: str
    labs: list[str]
    pass_rule: dict
    title_ko: str = ""
    # Shorter deliveries of the track: name ("2h", "4h") -> the labs taught, in order.
    cuts: dict[str, list[str]] = field(default_factory=dict)
    # What the assessment lab itself checks, when the syllabus sets it (lab 17: a mean accuracy bar
    # over hidden data sets). Which lab is the assessment, and the points it needs, is ``pass_rule``'s.
    assessment_bar: dict = field(default_factory=dict)

    @property
    def assessment(self) -> str | None:
        """The track's assessment lab (``pass_rule.assessment``), if it has one."""
        return self.pass_rule.get("assessment")

    def fractions(self, scores: dict[str, tuple[float, float]]) -> dict:
        """What the pass rule looks at, from ``scores`` (lab -> (earned, possible) autograded points):
        ``track`` (the fraction of all the track's points), ``labs`` (lab -> fraction; a lab with no
        possible points counts as 0) and ``assessment`` (the assessment lab's, or None)."""
        missing = [lab for lab in self.labs if lab not in scores]
        if missing:
            raise CourseError(f"track {self.id!r}: no score for {', '.join(missing)}")

        def fraction(earned: float, possible: float) -> float:
            return earned / possible if possible > 0 else 0.0

        labs = {lab: fraction(*scores[lab]) for lab in self.labs}
        return {"track": fraction(sum(scores[lab][0] for lab in self.labs), sum(scores[lab][1] for lab in self.labs)),
                "labs": labs, "assessment": labs[self.assessment] if self.assessment else None}

    def passes(self, scores: dict[str, tuple[float, float]]) -> bool:
        """Whether ``scores`` (lab -> (earned, possible) autograded points) pass the track's rule:
        ``min_fraction`` of the track's points, ``min_lab_fraction`` in every lab, and, when the
        track has an assessment, ``min_assessment_fraction`` in it."""
        f = self.fractions(scores)
        rule = self.pass_rule
        ok = f["track"] >= rule.get("min_fraction", 0)
        ok &= all(x >= rule.get("min_lab_fraction", 0) for x in f["labs"].values())
        if self.assessment:
            ok &= f["assessment"] >= rule.get("min_assessment_fraction", 0)
        return bool(ok)


@dataclass
class Course:
    root: Path
    id: str
    title: str
    labs: dict[str, LabSpec]
    tracks: dict[str, TrackSpec]
    # Languages the course is delivered in; the one `techday build`, `run`, the image and the hub
    # use unless told otherwise; and, per language, the labs whose translation is complete and kept
    # complete by the build and the tests (techday.i18n).
    languages: list[str] = field(default_factory=lambda: ["en"])
    default_language: str = "en"
    translated: dict[str, list[str]] = field(default_factory=dict)

    def language(self, requested: str | None) -> str:
        """``requested`` checked against the syllabus' languages; None means the default."""
        lang = requested or self.default_language
        if lang not in self.languages:
            raise CourseError(f"unknown language {lang!r}: the syllabus offers {', '.join(self.languages)}")
        return lang

    @property
    def build_dir(self) -> Path:
        return Path(os.environ.get("TECHDAY_BUILD", self.root / "build")).resolve()

    def lab_source(self, lab: str) -> Path:
        return self.root / "labs" / lab / f"{lab}.py"

    def lab_dirs(self) -> list[str]:
        labs_dir = self.root / "labs"
        return sorted(p.name for p in labs_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))

    def select(self, names: list[str] | None) -> tuple[list[str], list[str]]:
        """Split requested lab names into (known, unknown); no names means every lab, in order.
        A unique prefix selects a lab: ``00`` is ``00-gpu-tour``."""
        if not names:
            return list(self.labs), []
        known, unknown = [], []
        for name in names:
            name = name.rstrip("/").split("/")[-1].removesuffix(".py").removesuffix(".ipynb")
            matches = [lab for lab in self.labs if lab == name] or [lab for lab in self.labs if lab.startswith(name)]
            if len(matches) == 1:
                known.append(matches[0])
            else:
                unknown.append(name)
        return known, unknown


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _per_scale(value) -> bool:
    """``{ ci = 300, full = 900 }``: seconds per scale, each a positive whole number."""
    return isinstance(value, dict) and bool(value) and set(value) <= {"ci", "full"} \
        and all(_positive_int(v) for v in value.values())


# What each key of a [labs.X] and a [tracks.X] table must hold: a test and the words the error uses.
LAB_KEYS = {"title": (lambda v: isinstance(v, str), "a string"), "track": (lambda v: isinstance(v, str), "a string"),
            "minutes": (_positive_int, "a whole number of minutes above 0"),
            "slot": (lambda v: isinstance(v, str), "a string"), "title_ko": (lambda v: isinstance(v, str), "a string"),
            "timeout_s": (_per_scale, "seconds per scale, for example { ci = 300, full = 900 }"),
            "cell_timeout_s": (_per_scale, "seconds per scale, for example { ci = 120, full = 300 }"),
            "memory_mb": (_positive_int, "a whole number of MB above 0"),
            "max_processes": (_positive_int, "a whole number above 0")}
TRACK_KEYS = {"title": (lambda v: isinstance(v, str), "a string"),
              "title_ko": (lambda v: isinstance(v, str), "a string"),
              "labs": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of lab names"),
              "pass_rule": (lambda v: isinstance(v, dict), "a table, for example { min_fraction = 0.7 }"),
              "cuts": (lambda v: isinstance(v, dict) and all(isinstance(x, list) for x in v.values()),
                       "a table of lists of lab names"),
              "assessment_bar": (lambda v: isinstance(v, dict), "a table")}


def _check_types(path: Path, table: str, spec, keys: dict) -> None:
    """A [labs.X] or [tracks.X] table whose values have the wrong type (``minutes = "sixty"``,
    ``timeout_s = 300``) fails here, naming the key, rather than later in a lab run with a traceback."""
    if not isinstance(spec, dict):
        raise CourseError(f"{path}: [{table}] must be a table, not {spec!r}")
    for key, value in spec.items():
        test, what = keys.get(key, (None, ""))
        if test is not None and not test(value):
            raise CourseError(f"{path}: [{table}] {key} = {value!r}: it must be {what}")


def load_course(root: Path | None = None) -> Course:
    root = root or find_root()
    path = root / "course" / "syllabus.toml"
    if not path.exists():  # `--root` given a folder that is not the course repository
        raise CourseError(f"{root} has no course/syllabus.toml: give --root the course repository's folder "
                          "(the one with course/, labs/ and techday/)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CourseError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:  # saved in another encoding: a ValueError, once a traceback
        raise CourseError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    for table in ("course", "labs", "tracks"):
        if not isinstance(data.get(table, {}), dict):
            raise CourseError(f"{path}: {table} must be a table ([{table}]), not {data[table]!r}")
    if not data.get("labs"):
        # An empty or cut-off file: it built nothing and said so in a line that read as success.
        raise CourseError(f"{path}: no [labs.<lab>] table: is this file whole? (git checkout course/syllabus.toml "
                          "restores the committed one)")
    meta = data.get("course", {})
    labs = {}
    for lab_id, spec in data.get("labs", {}).items():
        _check_types(path, f"labs.{lab_id}", spec, LAB_KEYS)
        try:
            labs[lab_id] = LabSpec(id=lab_id, **spec)
        except TypeError as exc:
            raise CourseError(f"{path}: [labs.{lab_id}]: {exc}") from None
    tracks = {}
    for track_id, spec in data.get("tracks", {}).items():
        _check_types(path, f"tracks.{track_id}", spec, TRACK_KEYS)
        try:
            tracks[track_id] = TrackSpec(id=track_id, **spec)
        except TypeError as exc:
            raise CourseError(f"{path}: [tracks.{track_id}]: {exc}") from None
        for lab in tracks[track_id].labs:
            if lab not in labs:
                raise CourseError(f"{path}: track {track_id!r} lists unknown lab {lab!r}")
        rule = tracks[track_id].pass_rule
        if "assessment" in rule:
            fraction = rule.get("min_assessment_fraction")
            if rule["assessment"] not in tracks[track_id].labs:
                raise CourseError(f"{path}: track {track_id!r}: pass_rule.assessment {rule['assessment']!r} is not a lab of the track")
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
                raise CourseError(f"{path}: track {track_id!r}: pass_rule.min_assessment_fraction must be in (0, 1], "
                                  f"not {fraction!r}")
        for cut, cut_labs in tracks[track_id].cuts.items():
            stray = [lab for lab in cut_labs if lab not in tracks[track_id].labs]
            if stray:
                raise CourseError(f"{path}: track {track_id!r} cut {cut!r} lists labs outside the track: {stray}")
    languages = meta.get("languages", ["en"])
    if not (isinstance(languages, list) and all(isinstance(lang, str) for lang in languages)):
        raise CourseError(f"{path}: [course] languages = {languages!r}: it must be a list of language codes")
    default_language = meta.get("default_language", "en")
    if default_language not in languages:
        raise CourseError(f"{path}: [course] default_language {default_language!r} is not one of languages {languages}")
    translated = meta.get("translated", {})
    if not (isinstance(translated, dict) and all(isinstance(done, list) for done in translated.values())):
        raise CourseError(f"{path}: [course] translated = {translated!r}: it must be a table of lab lists "
                          "(ko = [\"00-gpu-tour\", ...])")
    for lang, done in translated.items():
        if lang not in languages:
            raise CourseError(f"{path}: [course] translated lists language {lang!r}, not one of languages {languages}")
        stray = [lab for lab in done if lab not in labs]
        if stray:
            raise CourseError(f"{path}: [course] translated.{lang} lists unknown labs {stray}")
    return Course(root=root, id=meta.get("id", "techday"), title=meta.get("title", "Tech Day GPU Lab"),
                  labs=labs, tracks=tracks, languages=languages, default_language=default_language,
                  translated={lang: list(done) for lang, done in translated.items()})
