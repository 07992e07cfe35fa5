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
    pkg_root = Path(__file__).resolve().parent.parent
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

    def timeout(self, scale: str) -> int:
        return int(self.timeout_s.get(scale, max(self.timeout_s.values())))


@dataclass
class TrackSpec:
    id: str
    title: str
    labs: list[str]
    pass_rule: dict
    title_ko: str = ""
    # Shorter deliveries of the track: name ("2h", "4h") -> the labs taught, in order.
    cuts: dict[str, list[str]] = field(default_factory=dict)
    # A track's assessment lab and its pass rule (e.g. a mean accuracy bar over hidden data sets).
    assessment: dict = field(default_factory=dict)


@dataclass
class Course:
    root: Path
    id: str
    title: str
    labs: dict[str, LabSpec]
    tracks: dict[str, TrackSpec]

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


def load_course(root: Path | None = None) -> Course:
    root = root or find_root()
    path = root / "course" / "syllabus.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CourseError(f"{path}: {exc}") from None
    meta = data.get("course", {})
    labs = {}
    for lab_id, spec in data.get("labs", {}).items():
        try:
            labs[lab_id] = LabSpec(id=lab_id, **spec)
        except TypeError as exc:
            raise CourseError(f"{path}: [labs.{lab_id}]: {exc}") from None
    tracks = {}
    for track_id, spec in data.get("tracks", {}).items():
        try:
            tracks[track_id] = TrackSpec(id=track_id, **spec)
        except TypeError as exc:
            raise CourseError(f"{path}: [tracks.{track_id}]: {exc}") from None
        for lab in tracks[track_id].labs:
            if lab not in labs:
                raise CourseError(f"{path}: track {track_id!r} lists unknown lab {lab!r}")
        for cut, cut_labs in tracks[track_id].cuts.items():
            stray = [lab for lab in cut_labs if lab not in tracks[track_id].labs]
            if stray:
                raise CourseError(f"{path}: track {track_id!r} cut {cut!r} lists labs outside the track: {stray}")
    return Course(root=root, id=meta.get("id", "techday"), title=meta.get("title", "Tech Day GPU Lab"),
                  labs=labs, tracks=tracks)
