"""What a stage of docker/Dockerfile puts into its image, rebuilt without Docker, and a scan of it for
what a trainee must never hold.

:class:`ImageBuilder` reads the Dockerfile and follows one stage the way the builder does: ``FROM``
another stage starts from that stage's files, ``COPY`` copies from the build context (honouring
``.dockerignore``) or from another stage, ``WORKDIR`` and ``ENV`` are kept, and the ``RUN`` steps that
write course files are run for real (``techday build``, with the stage's ``TECHDAY_*`` paths mapped
into a folder here; ``printf ... > FILE``). Every file that any layer of the stage ever held is kept,
also one a later layer replaces: a layer's files stay in the image even when a later one hides them.
A ``RUN`` step this module does not know raises :class:`UnknownStep`, so a new step that copies or
downloads something cannot slip past the scan. Third-party packages (apt, pip, npm) are not rebuilt:
they hold no course file.

:class:`SecretScanner` looks at each file for a solution region or hidden-test marker, the markup of a
lab source, a lab source's bytes, the body of any solution region or hidden test of ``labs/``, a
wrong solution from ``tests/wrong_solutions``, a gradebook or any SQLite file, and files that came
from ``labs/``, ``tests/`` or ``grading/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}
NO_FILES = {"ARG", "LABEL", "EXPOSE", "CMD", "ENTRYPOINT", "USER", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
            "VOLUME", "MAINTAINER"}


def parse_dockerfile(text: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments) with continuations joined and comments dropped, as the builder reads it."""
    out, buf, start = [], "", 0
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is skipped
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf += stripped[:-1].rstrip() + " "
            continue
        buf += stripped
        word, _, args = buf.partition(" ")
        out.append((start, word.upper(), args.strip()))
        buf = ""
    if buf:
        raise ValueError(f"line {start}: the file ends inside a continued instruction")
    return out


def expand(text: str, env: dict) -> str:
    """``$VAR`` and ``${VAR}`` from ``env`` (unset: empty), as the builder expands ENV, WORKDIR, COPY."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), text)


@dataclass
class Stage:
    name: str
    base: str  # another stage's name, or an image reference
    steps: list[tuple[int, str, str]]
    line: int
    globals: dict = field(default_factory=dict)  # the ARGs before the first FROM, with their defaults


def stages(parsed: list[tuple[int, str, str]]) -> dict[str, Stage]:
    """The stages in file order, by name (unnamed ones by index), with global ARG defaults in FROM."""
    args, out, current = {}, {}, None
    for n, word, rest in parsed:
        if word == "FROM":
            words = rest.split()
            image = expand(words[0], args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(out))
            current = out[name] = Stage(name, image, [], n, args)
        elif current is None:
            if word != "ARG":
                raise ValueError(f"line {n}: only ARG may come before the first FROM")
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip()
        else:
            current.steps.append((n, word, rest))
    return out


class DockerIgnore:
    """``.dockerignore`` as Docker reads it: patterns on slash paths from the context root, ``**`` for any
    depth, a match on a folder excludes what is below it, ``!`` re-includes, the last match wins."""

    def __init__(self, context: Path):
        path = context / ".dockerignore"
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        self.rules = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            pattern = str(PurePosixPath("/" + pattern.strip("/")))[1:]
            self.rules.append((negate, re.compile(self._regex(pattern))))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return out + r"\Z"

    def ignored(self, rel: str) -> bool:
        parts = PurePosixPath(rel).parts
        prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        result = False
        for negate, rx in self.rules:
            if any(rx.match(p) for p in prefixes):
                result = not negate
        return result


class UnknownStep(RuntimeError):
    """A step whose effect on the image's files this emulation does not know: teach it, do not skip it."""


@dataclass(frozen=True)
class File:
    dest: str    # the absolute path in the image
    origin: str  # "context:labs/x.py", "stage grader:/srv/...", "RUN techday build (Dockerfile:NN)"
    disk: Path   # its bytes, on this machine


@dataclass
class StageResult:
    name: str
    rootfs: Path
    files: dict[str, File] = field(default_factory=dict)
    shadowed: list[File] = field(default_factory=list)  # replaced by a later layer, still in the image
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)  # this stage's ARGs: seen by its steps, not in the image
    workdir: str = "/"
    log: list[str] = field(default_factory=list)

    def all_files(self) -> list[File]:
        return list(self.files.values()) + self.shadowed

    def under(self, prefix: str) -> list[File]:
        prefix = prefix.rstrip("/") + "/"
        return [f for f in self.files.values() if f.dest.startswith(prefix)]


_CACHE: dict[tuple, StageResult] = {}


class ImageBuilder:
    """Rebuild a stage's files from ``dockerfile_text`` and ``context`` into ``workdir``.

    Results are cached per process by the stage's instructions (and its ancestors'): a variant of the
    Dockerfile that changes only the trainee stage reuses the grader stage's course build.
    """

    def __init__(self, dockerfile_text: str, context: Path, workdir: Path, build_args: dict | None = None):
        self.text = dockerfile_text
        self.build_args = dict(build_args or {})  # ``docker build --build-arg``: over an ARG's default
        self.parsed = parse_dockerfile(dockerfile_text)
        for n, word, _ in self.parsed:
            if word not in INSTRUCTIONS:
                raise ValueError(f"Dockerfile:{n}: unknown instruction {word}")
        self.stages = stages(self.parsed)
        self.context = Path(context).resolve()
        self.ignore = DockerIgnore(self.context)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    # -- the stage chain -------------------------------------------------------------------------

    def key(self, name: str) -> tuple:
        stage = self.stages[name]
        base = self.key(stage.base) if stage.base in self.stages else (("image", stage.base),)
        return ((str(self.context), tuple(sorted(self.build_args.items()))) + base
                + tuple((w, a) for _, w, a in stage.steps))

    def build(self, name: str) -> StageResult:
        if name not in self.stages:
            raise KeyError(f"no stage {name!r} in the Dockerfile (stages: {', '.join(self.stages)})")
        key = self.key(name)
        if key in _CACHE:
            return _CACHE[key]
        stage = self.stages[name]
        rootfs = self.workdir / f"{name}-{hashlib.sha256(repr(key).encode()).hexdigest()[:10]}"
        if rootfs.exists():
            shutil.rmtree(rootfs)
        if stage.base in self.stages:
            parent = self.build(stage.base)
            shutil.copytree(parent.rootfs, rootfs, symlinks=True)
            result = StageResult(name, rootfs, env=dict(parent.env), workdir=parent.workdir,
                                 log=[f"FROM {stage.base}: {len(parent.files)} file(s)"])
            for dest, f in parent.files.items():
                result.files[dest] = File(dest, f.origin, self._disk(rootfs, dest))
            result.shadowed = list(parent.shadowed)
        else:
            rootfs.mkdir(parents=True)
            result = StageResult(name, rootfs, log=[f"FROM {stage.base}: an image from outside, no course file"])
        for n, word, args in stage.steps:
            self._step(result, n, word, args, stage)
        _CACHE[key] = result
        return result

    # -- one instruction -------------------------------------------------------------------------

    @staticmethod
    def _disk(rootfs: Path, dest: str) -> Path:
        return rootfs / dest.lstrip("/")

    def _abs(self, result: StageResult, path: str) -> str:
        path = expand(path, {**result.args, **result.env})
        return path if path.startswith("/") else str(PurePosixPath(result.workdir) / path)

    def _step(self, result: StageResult, n: int, word: str, args: str, stage: Stage) -> None:
        if word in NO_FILES:
            if word == "ARG":
                # a build argument, else the ARG's own default, else the global ARG's of that name (Docker's
                # rule: a global ARG reaches a stage that declares it again); an ENV of that name wins
                key, eq, value = args.partition("=")
                key = key.strip()
                if key in self.build_args:
                    value = self.build_args[key]
                elif not eq:
                    value = stage.globals.get(key)
                if value is not None:
                    result.args[key] = value.strip()
            return
        if word == "ENV":
            words = shlex.split(args)
            pairs = [w.split("=", 1) for w in words] if "=" in words[0] else [[words[0], " ".join(words[1:])]]
            for key, value in pairs:
                result.env[key] = expand(value, {**result.args, **result.env})
            return
        if word == "WORKDIR":
            result.workdir = self._abs(result, args)
            self._disk(result.rootfs, result.workdir).mkdir(parents=True, exist_ok=True)
            return
        if word == "COPY":
            self._copy(result, n, args)
            return
        if word == "RUN":
            self._run(result, n, args)
            return
        raise UnknownStep(f"Dockerfile:{n}: {word} {args[:60]}: this emulation does not know what it puts in the "
                          "image (tests/dockerbuild.py)")

    def _put(self, result: StageResult, dest: str, origin: str, source: Path) -> None:
        disk = self._disk(result.rootfs, dest)
        if dest in result.files:  # the old bytes stay in the layer below: keep them for the scan
            keep = result.rootfs.parent / "shadowed" / f"{len(result.shadowed)}-{Path(dest).name}"
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(disk, keep)
            old = result.files[dest]
            result.shadowed.append(File(old.dest, old.origin, keep))
        disk.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, disk)
        result.files[dest] = File(dest, origin, disk)

    def _copy(self, result: StageResult, n: int, args: str) -> None:
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = {}
        while words and words[0].startswith("--"):
            key, _, value = words.pop(0)[2:].partition("=")
            if key not in ("from", "chown", "chmod", "link"):
                raise UnknownStep(f"Dockerfile:{n}: COPY --{key}: not emulated (tests/dockerbuild.py)")
            flags[key] = value
        *sources, dest = words
        dest_abs = self._abs(result, dest)
        as_dir = dest.endswith("/") or len(sources) > 1 or self._disk(result.rootfs, dest_abs).is_dir()
        copied = 0
        if "from" in flags:
            if flags["from"] not in self.stages:
                raise UnknownStep(f"Dockerfile:{n}: COPY --from={flags['from']}: an image from outside; its "
                                  "files are not known here")
            other = self.build(flags["from"])
            for src in sources:
                src = src if src.startswith("/") else str(PurePosixPath(other.workdir) / src)
                disk = self._disk(other.rootfs, src)
                if disk.is_file():
                    target = str(PurePosixPath(dest_abs) / PurePosixPath(src).name) if as_dir else dest_abs
                    self._put(result, target, f"stage {other.name}:{src}", disk)
                    copied += 1
                    continue
                found = other.under(src)
                if not found:
                    raise FileNotFoundError(f"Dockerfile:{n}: COPY --from={other.name} {src}: not in that stage")
                for f in found:
                    rel = PurePosixPath(f.dest).relative_to(src)
                    self._put(result, str(PurePosixPath(dest_abs) / rel), f"stage {other.name}:{f.dest}", f.disk)
                    copied += 1
        else:
            for src in sources:
                matches = sorted(self.context.glob(src)) if any(c in src for c in "*?[") else [self.context / src]
                for path in matches:
                    rel = path.relative_to(self.context).as_posix()
                    if not path.exists() or self.ignore.ignored(rel):
                        raise FileNotFoundError(f"Dockerfile:{n}: COPY {src}: not in the build context")
                    if path.is_file():
                        target = str(PurePosixPath(dest_abs) / path.name) if as_dir else dest_abs
                        self._put(result, target, f"context:{rel}", path)
                        copied += 1
                        continue
                    for item in sorted(path.rglob("*")):
                        item_rel = item.relative_to(self.context).as_posix()
                        if item.is_dir() or self.ignore.ignored(item_rel):
                            continue
                        self._put(result, str(PurePosixPath(dest_abs) / item.relative_to(path).as_posix()),
                                  f"context:{item_rel}", item)
                        copied += 1
        result.log.append(f"Dockerfile:{n}: COPY {args}: {copied} file(s)")

    # -- RUN ---------------------------------------------------------------------------------------

    NO_COURSE_FILES = {
        "apt-get": "system packages", "npm": "node packages", "userdel": "users", "useradd": "users",
        "groupadd": "groups",
        "chown": "ownership", "chmod": "modes", "mkdir": "empty folders", "true": "nothing", "grep": "nothing",
        "rm": "removal (a lower layer keeps the bytes: every file ever copied is scanned)",
        "jupyter": "extension settings", "pip": "third-party packages", "pip3": "third-party packages",
    }

    def _run(self, result: StageResult, n: int, args: str) -> None:
        for words in run_commands(args):
            redirect = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in (">", ">>")), None)
            to_file = redirect is not None and not redirect.startswith("/dev/")
            head = words[0]
            python = head in ("python", "python3") and len(words) > 2 and words[1] == "-m"
            if head == "techday" and words[1:2] == ["build"]:
                self._techday_build(result, n, [expand(w, {**result.args, **result.env}) for w in words[1:]])
            elif head == "techday" and words[1:3] == ["hub", "lab-language"] and not to_file:
                self._techday_lab_language(result, n, [expand(w, {**result.args, **result.env}) for w in words[1:]])
            elif head == "printf" and to_file:
                self._printf(result, n, words)
            elif to_file:
                raise UnknownStep(f"Dockerfile:{n}: `{' '.join(words)}` writes a file this emulation does not make")
            elif head in self.NO_COURSE_FILES:
                continue
            elif python and words[2] in ("venv", "pip"):
                continue  # a virtual environment, third-party packages, this package's own metadata
            else:
                raise UnknownStep(f"Dockerfile:{n}: RUN `{' '.join(words)}`: this emulation does not know what it "
                                  "puts in the image; teach tests/dockerbuild.py before the payload test trusts it")

    def _mapped_env(self, result: StageResult) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TECHDAY_")}
        for key, value in {**result.args, **result.env}.items():
            if key.startswith("TECHDAY_"):
                env[key] = str(self._disk(result.rootfs, value)) if value.startswith("/") else value
        return env

    def _techday_build(self, result: StageResult, n: int, words: list[str]) -> None:
        build = result.env.get("TECHDAY_BUILD")
        if not build or self._disk(result.rootfs, build).joinpath("course").exists():
            raise UnknownStep(f"Dockerfile:{n}: techday build needs an empty TECHDAY_BUILD in this stage")
        cwd = self._disk(result.rootfs, result.workdir)
        proc = subprocess.run([sys.executable, "-m", "techday", *words], cwd=cwd, env=self._mapped_env(result),
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"Dockerfile:{n}: techday {' '.join(words)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        before = set(result.files)
        made = 0
        for path in sorted(self._disk(result.rootfs, build).rglob("*")):
            dest = "/" + path.relative_to(result.rootfs).as_posix()
            if path.is_file() and dest not in before:
                result.files[dest] = File(dest, f"RUN techday {' '.join(words)} (Dockerfile:{n})", path)
                made += 1
        result.log.append(f"Dockerfile:{n}: RUN techday {' '.join(words)}: {made} file(s)")

    def _techday_lab_language(self, result: StageResult, n: int, words: list[str]) -> None:
        """``techday hub lab-language LANG``: JupyterLab's settings overrides, written into the image's virtual
        environment (``$VIRTUAL_ENV``) as the image's own ``techday`` would (run here on a copy of what the
        image's environment holds there, then put in place: a file it replaces is kept for the scan)."""
        venv = result.env.get("VIRTUAL_ENV")
        if not venv or "--prefix" in words:
            raise UnknownStep(f"Dockerfile:{n}: techday {' '.join(words)}: needs VIRTUAL_ENV and no --prefix here")
        stage_prefix = result.rootfs.parent / f"lab-language-{result.name}-{n}"
        if stage_prefix.exists():
            shutil.rmtree(stage_prefix)
        settings = Path("share/jupyter/lab/settings")
        if self._disk(result.rootfs, venv).joinpath(settings).is_dir():
            shutil.copytree(self._disk(result.rootfs, venv) / settings, stage_prefix / settings)
        # nbgrader's labextension, which the step rewrites: the image's pip installs it (not emulated), so this
        # environment's stands for it (the same version as the locks'); only what the step changes is put back
        from techday.hub.nbgraderlang import copy_original, extension_dir

        nbgrader = copy_original(extension_dir(), extension_dir(stage_prefix))
        pip_installed = {path: path.read_bytes() for path in nbgrader.rglob("*") if path.is_file()}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(self.context), os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.run([sys.executable, "-m", "techday", *words, "--prefix", str(stage_prefix)],
                              cwd=self.context, env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"Dockerfile:{n}: techday {' '.join(words)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        made = 0
        for path in sorted(stage_prefix.rglob("*")):
            if path.is_file() and pip_installed.get(path) != path.read_bytes():
                self._put(result, str(PurePosixPath(venv) / path.relative_to(stage_prefix).as_posix()),
                          f"RUN techday {' '.join(words)} (Dockerfile:{n})", path)
                made += 1
        result.log.append(f"Dockerfile:{n}: RUN techday {' '.join(words)}: {made} file(s)")

    def _printf(self, result: StageResult, n: int, words: list[str]) -> None:
        i = words.index(">") if ">" in words else words.index(">>")
        target = self._abs(result, words[i + 1])
        out = subprocess.run(["printf", *words[1:i]], capture_output=True, check=True).stdout
        tmp = result.rootfs.parent / "printf.tmp"
        tmp.write_bytes(out)
        self._put(result, target, f"RUN printf (Dockerfile:{n})", tmp)
        tmp.unlink()


def run_commands(args: str) -> list[list[str]]:
    """The commands of one ``RUN`` line, each as its words (``&&``, ``||``, ``;``, pipes and parentheses split
    them; quotes removed, ``$VAR`` left for :func:`expand`)."""
    lex = shlex.shlex(args, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    commands, current = [], []
    for token in lex:
        if token in ("&&", "||", ";", "|", "(", ")"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


# ------------------------------------------------------------------------------------------------ scan


MARKER = re.compile(r"^\s*#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")
LAB_MARKUP = re.compile(r"^# %%.*\bnbgrader=")
SQLITE = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Hit:
    dest: str
    origin: str
    what: str

    def __str__(self):
        return f"{self.dest} (from {self.origin}): {self.what}"


def normalise(lines) -> str:
    """Lines stripped, blank ones dropped: a body found again whatever its indentation."""
    return "\n".join(s for s in (line.strip() for line in lines) if s)


def regions(text: str) -> list[tuple[str, str]]:
    """(kind, normalised body) of every solution region and hidden-test region of a lab source."""
    out, kind, body = [], None, []
    for line in text.splitlines():
        m = MARKER.match(line)
        if m and m.group(1) == "BEGIN":
            kind, body = m.group(2), []
        elif m and kind:
            out.append((kind, normalise(body)))
            kind = None
        elif kind:
            body.append(line)
    return out


def percent_cells(text: str) -> list[str]:
    """The cell bodies of a jupytext percent-format file (comment-only lines dropped)."""
    cells, body = [], []
    for line in text.splitlines() + ["# %%"]:
        if line.startswith("# %%"):
            if body:
                cells.append(normalise(x for x in body if not x.strip().startswith("#")))
            body = []
        else:
            body.append(line)
    return cells


class SecretScanner:
    """Everything a trainee must not hold, learnt from the repository: ``labs/`` and ``tests/wrong_solutions``."""

    FORBIDDEN_ORIGINS = {"labs": "a lab source folder (labs/)", "tests": "the test suite (tests/: wrong solutions, fixtures)",
                         "grading": "the grading settings (grading/)"}

    def __init__(self, repo: Path, allow_markup: dict[str, str] | None = None, min_lines: int = 2, min_chars: int = 30):
        self.allow_markup = allow_markup or {}
        self.lab_hashes, self.bodies, self.wrong = {}, {}, {}
        for path in sorted((repo / "labs").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(repo).as_posix()
                self.lab_hashes[hashlib.sha256(path.read_bytes()).hexdigest()] = rel
                if path.suffix == ".py":
                    for kind, body in regions(path.read_text(encoding="utf-8")):
                        if body.count("\n") + 1 >= min_lines and len(body) >= min_chars:
                            self.bodies[body] = f"a {kind.lower()} region of {rel}"
        for path in sorted((repo / "tests" / "wrong_solutions").glob("*.py")):
            for body in percent_cells(path.read_text(encoding="utf-8")):
                if body.count("\n") + 1 >= max(3, min_lines) and len(body) >= min_chars:
                    self.wrong[body] = f"a wrong solution of {path.relative_to(repo).as_posix()}"

    @staticmethod
    def _lines(f: File, data: bytes) -> list[str] | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if f.dest.endswith(".ipynb"):
            try:
                nb = json.loads(text)
                return [line for cell in nb.get("cells", [])
                        for line in "".join(cell.get("source", "")).splitlines()]
            except (ValueError, AttributeError):
                pass
        return text.splitlines()

    def scan_file(self, f: File) -> list[Hit]:
        hits = []
        hit = lambda what: hits.append(Hit(f.dest, f.origin, what))  # noqa: E731
        if f.origin.startswith("context:"):
            top = f.origin.removeprefix("context:").split("/", 1)[0]
            if top in self.FORBIDDEN_ORIGINS:
                hit(f"copied from {self.FORBIDDEN_ORIGINS[top]}")
        data = f.disk.read_bytes()
        name = PurePosixPath(f.dest).name
        if name == "gradebook.db" or name.endswith((".db", ".sqlite", ".sqlite3")) or data.startswith(SQLITE):
            hit("a gradebook or other SQLite database")
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.lab_hashes:
            hit(f"the bytes of {self.lab_hashes[digest]}")
        lines = self._lines(f, data)
        if lines is None:
            return hits
        if f.dest not in self.allow_markup:
            for number, line in enumerate(lines, start=1):
                m = MARKER.match(line)
                if m:
                    hit(f"line {number}: {'a hidden-test' if 'HIDDEN' in m.group(2) else 'a solution'} region marker "
                        f"({line.strip()})")
                elif LAB_MARKUP.match(line):
                    hit(f"line {number}: lab source markup ({line.strip()[:60]})")
        text = normalise(lines)
        for body, where in self.bodies.items():
            if body in text:
                hit(f"the body of {where}")
        for body, where in self.wrong.items():
            if body in text:
                hit(f"the body of {where}")
        return hits

    def scan(self, files) -> tuple[int, list[Hit]]:
        files = list(files)
        hits = [h for f in files for h in self.scan_file(f)]
        return len(files), hits


# ------------------------------------------------------------------------------------------------ names


def image_target(ref: str) -> str:
    """The Dockerfile target an image name stands for, by the project's naming: ``techday-lab:latest`` and
    ``registry/techday/lab:0.1.0`` are target ``lab``; ``techday-grader``, ``.../techday/grader``:
    ``grader``; ``techday-k8s-hub``, ``.../techday/k8s-hub``: ``k8s-hub``."""
    repo = ref.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    last = last.split(":", 1)[0]
    return last.removeprefix("techday-")


def insert_after_from(text: str, stage: str, line: str) -> str:
    """A variant of a Dockerfile with ``line`` as the first instruction of ``stage`` (for tests that must fail)."""
    target = stages(parse_dockerfile(text))[stage].line
    lines = text.splitlines()
    return "\n".join(lines[:target] + [line] + lines[target:]) + "\n"
