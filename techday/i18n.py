"""The course in more than one language: trainee-facing messages at run time, and the translated
markdown of a lab at build time. Why this shape: ``labs/README.md`` ("Languages").

A lab's translation lives beside its source, one file per language, ``labs/<lab>/<lab>.<lang>.toml``::

    [cells.intro]                  # the markdown cell whose marker line says key="intro"
    en_sha = "3f1c0a9e2b7d"        # hash of the English cell this text was translated from
    text = '''
    # 00 GPU와 실행 환경 둘러보기
    ...'''

    [messages.wrong_sum]           # msg("00.wrong_sum", "...") in the lab's code
    en_sha = "9a0b1c2d3e4f"        # hash of the English default text
    text = "합이 틀렸습니다: {got}"

Code cells are never translated: the same bytes in every language (grade ids, points and nbgrader's
checksums too), so one gradebook grades a room that mixes languages. A message a trainee reads
(an assert's message, a printed explanation) goes through :func:`msg`, which picks the language
from ``$TECHDAY_LANG`` (else the syllabus' ``default_language``) when it runs::

    from techday.i18n import msg
    assert ok, msg("01.saxpy_wrong", "SAXPY differs at n = {n}", n=n)

The key's part before the dot is the lab's number; the rest names the message in that lab's file.
Messages of the package itself (``techday.lab``'s banner lines) use ``techday.<name>`` keys, with
their translations in ``techday/data/messages.<lang>.toml``.
English is the text in the code, so an English run reads no catalogue at all. Missing translations
fall back to English at run time; the build and ``tests/unit/test_i18n.py`` refuse them for every
lab the syllabus lists as translated (``[course] translated``).

:func:`msg` is a pure function: it keeps no cache and changes no module state (the grading referee
snapshots ``techday`` modules around every test cell); it reads the catalogue each time it is
called, which costs about a millisecond and happens only where a message is shown.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import string
from dataclasses import dataclass, field
from pathlib import Path

from . import atomicfile

ENV = "TECHDAY_LANG"
SOURCE_LANGUAGE = "en"
# Written beside a built notebook (and so released with it): the lab's messages in the build's
# language, without those only hidden tests use.
RELEASED_CATALOGUE = "techday-messages.{lang}.json"
_KEY_RE = re.compile(r"^(\d{2})\.([A-Za-z0-9_-]{1,64})$")
_PACKAGE_KEY_RE = re.compile(r"^techday\.([A-Za-z0-9_-]{1,64})$")
PACKAGE_CATALOGUE = "data/messages.{lang}.toml"  # beside this module
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_WORD_HAS_LETTER = re.compile(r"[A-Za-z\uac00-\ud7a3\u3131-\u318e]")


class TranslationError(ValueError):
    """A translation that cannot be used; the message names the lab, the cell or message and the language."""


def current_language() -> str:
    """The language of trainee-facing messages: ``$TECHDAY_LANG``, else the syllabus'
    ``default_language`` (the trainee image and the grading sandbox hold ``course/syllabus.toml``
    beside the package), else English."""
    env = (os.environ.get(ENV) or "").strip().lower()
    if env:
        return env
    root = _course_root("course/syllabus.toml")
    if root is not None:
        import tomllib

        try:
            meta = tomllib.loads((root / "course" / "syllabus.toml").read_text(encoding="utf-8")).get("course", {})
            lang = meta.get("default_language")
            if isinstance(lang, str) and lang:
                return lang
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            pass
    return SOURCE_LANGUAGE


def en_hash(text: str) -> str:
    """The stored fingerprint of an English text (cell source or message default)."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:12]


def fields(template: str) -> set[str]:
    """The ``{name}`` placeholders of a message template."""
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError:
        return {"<malformed>"}


def _course_root(holding: str = "labs") -> Path | None:
    """``$TECHDAY_ROOT``, else the folder above the package, if it holds ``holding``."""
    env = os.environ.get("TECHDAY_ROOT")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent)
    for root in candidates:
        if (root / holding).exists():
            return root
    return None


def _lookup(lang: str, key: str) -> str | None:
    """The translated text of message ``key``: from the catalogue released beside the notebook
    (the working directory), else from the lab's source catalogue in the course checkout."""
    try:
        released = Path.cwd() / RELEASED_CATALOGUE.format(lang=lang)
        if released.is_file():
            data = json.loads(released.read_text(encoding="utf-8"))
            text = data.get("messages", {}).get(key)
            if isinstance(text, str):
                return text
    except (OSError, ValueError):
        pass
    pm = _PACKAGE_KEY_RE.match(key)
    if pm:
        path = Path(__file__).resolve().parent / PACKAGE_CATALOGUE.format(lang=lang)
        try:
            entry = load_catalogue(path).get("messages", {}).get(pm.group(1)) if path.is_file() else None
        except TranslationError:
            return None
        return entry["text"] if isinstance(entry, dict) else None
    m = _KEY_RE.match(key)
    root = _course_root()
    if not m or root is None:
        return None
    for path in sorted((root / "labs").glob(f"{m.group(1)}-*/{m.group(1)}-*.{lang}.toml")):
        try:
            entry = load_catalogue(path).get("messages", {}).get(m.group(2))
        except TranslationError:
            return None
        if isinstance(entry, dict) and isinstance(entry.get("text"), str):
            return entry["text"]
    return None


def msg(key: str, default: str, /, **fmt) -> str:
    """A trainee-facing message in the language of this run (``$TECHDAY_LANG``).

    ``default`` is the English text, a :meth:`str.format` template filled from ``fmt``; ``key`` is
    ``"<lab number>.<name>"``. A language without a translation of ``key`` gets the English."""
    lang = current_language()
    if lang != SOURCE_LANGUAGE:
        text = _lookup(lang, key)
        # A translation is data that may come with a submission: it may name the values the English
        # names and nothing else (no attribute or index access through a field, which would let the
        # text reach into the test's objects), or the English is shown.
        return _render(text, default, fmt)
    return default.format(**fmt)


def _render(text: str | None, default: str, fmt: dict) -> str:
    """``text`` formatted with ``fmt`` where it names only the fields ``default`` names and formats, else
    the English ``default``."""
    if text is not None and _fields_within(text, default):
        try:
            return text.format(**fmt)
        except (KeyError, IndexError, ValueError):
            pass
    return default.format(**fmt)


class PackageCatalogue:
    """The package's own messages (``techday.<name>``) in one language, read once, from the package's
    catalogue only (``techday/data/messages.<lang>.toml``), never from the working folder.

    For a process beside files a notebook writes: :func:`msg` reads ``techday-messages.<lang>.json`` in
    the working folder first, a file a notebook's cell can write (a forged catalogue). The grading
    sandbox's executor (:mod:`techday.grading.sandbox_exec`) loads one before the kernel starts, words
    its own errors with it and hands the referee its texts in the file the kernel reads and deletes
    before any notebook code runs (grading/README.md, "The referee's words in the trainee's language").
    :meth:`msg` has :func:`msg`'s signature, so the package's checks (``examine_package``) find its
    calls and their twins."""

    def __init__(self, lang: str | None = None):
        self.lang = lang or current_language()
        self.texts: dict[str, str] = {}
        if self.lang == SOURCE_LANGUAGE:
            return
        path = Path(__file__).resolve().parent / PACKAGE_CATALOGUE.format(lang=self.lang)
        try:
            entries = load_catalogue(path).get("messages", {}) if path.is_file() else {}
        except TranslationError:
            entries = {}
        self.texts = {f"techday.{name}": e["text"] for name, e in entries.items()}

    def msg(self, key: str, default: str, /, **fmt) -> str:
        """:func:`msg`, from this catalogue: the English where it has no usable translation."""
        return _render(self.texts.get(key), default, fmt)

    def starting(self, prefix: str) -> dict[str, str]:
        """The texts whose key starts with ``prefix`` (``"techday.referee_"``)."""
        return {k: v for k, v in self.texts.items() if k.startswith(prefix)}


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal or a notebook's fixed-width output: two for each wide or full-width
    character (Hangul, CJK), none for a combining mark, one for the rest."""
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``columns`` columns as :func:`width` counts them (``str.ljust`` counts
    characters, so a Korean row of a table came out shorter than its English header by one column a syllable);
    ``right`` pads on the left. Longer text is left as it is."""
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


def _fields_within(text: str, default: str) -> bool:
    """Every replacement field of ``text`` is a plain name that ``default`` also uses."""
    try:
        names = {f for _, f, spec, _ in string.Formatter().parse(text) if f is not None}
        allowed = {f for _, f, _, _ in string.Formatter().parse(default) if f is not None}
        specs = [spec for _, f, spec, _ in string.Formatter().parse(text) if f is not None]
    except ValueError:
        return False
    return all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names) and names <= allowed \
        and not any("{" in (spec or "") for spec in specs)


# --- build and check time -----------------------------------------------------------------------


def catalogue_path(source: Path, lang: str) -> Path:
    """``labs/<lab>/<lab>.py`` -> ``labs/<lab>/<lab>.<lang>.toml``."""
    return source.with_name(f"{source.stem}.{lang}.toml")


def load_catalogue(path: Path) -> dict:
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TranslationError(f"{path}: {exc}") from None
    for section in ("cells", "messages"):
        entries = data.get(section, {})
        if not isinstance(entries, dict):
            raise TranslationError(f"{path}: [{section}] must be a table of entries")
        for key, entry in entries.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str) \
                    or not isinstance(entry.get("en_sha"), str):
                raise TranslationError(f"{path}: [{section}.{key}] needs text = \"...\" and en_sha = \"...\"")
    return data


@dataclass
class Message:
    key: str       # "01.saxpy_wrong"
    default: str   # the English template
    line: int
    hidden: bool   # only inside ### BEGIN/END HIDDEN TESTS
    names: frozenset = frozenset()  # the keyword arguments passed (None in it: a **mapping)

    def unfilled(self) -> set[str]:
        """Placeholders of the English text that the call does not pass (a KeyError when shown)."""
        return set() if None in self.names else fields(self.default) - set(self.names)


def lab_number(lab: str) -> str:
    return lab.split("-", 1)[0]


def messages_in(source_text: str) -> list[Message]:
    """Every ``msg("<key>", "<English>", ...)`` call in a lab source, with its line and whether it
    sits in hidden tests. Keys and defaults must be string literals (checked by the tests)."""
    import ast

    hidden_lines: set[int] = set()
    inside = False
    for i, line in enumerate(source_text.splitlines(), 1):
        if line.strip() == "### BEGIN HIDDEN TESTS":
            inside = True
        elif line.strip() == "### END HIDDEN TESTS":
            inside = False
        elif inside:
            hidden_lines.add(i)
    found = []
    for node in ast.walk(ast.parse(source_text)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if name != "msg" or len(node.args) < 2:
            continue
        key, default = node.args[0], node.args[1]
        if isinstance(key, ast.Constant) and isinstance(default, ast.Constant) \
                and isinstance(key.value, str) and isinstance(default.value, str):
            found.append(Message(key.value, default.value, node.lineno, node.lineno in hidden_lines,
                                 frozenset(k.arg for k in node.keywords)))
        else:
            found.append(Message("<not a literal>", "", node.lineno, node.lineno in hidden_lines))
    return found


def raw_messages(source_text: str) -> list[int]:
    """Lines of trainee-facing English that bypass :func:`msg`: an assert's message, an
    ``AssertionError``'s, or ``assert_close``'s ``what``, written as a string with words in it
    (a bare name such as ``"saxpy_kernel"`` is not prose)."""
    import ast

    def prose(node) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        else:
            return False
        return sum(1 for word in text.split() if re.search(r"[A-Za-z]{2,}", word)) >= 2

    lines = []
    for node in ast.walk(ast.parse(source_text)):
        if isinstance(node, ast.Assert) and node.msg is not None and prose(node.msg):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "AssertionError" and node.args and prose(node.args[0]):
                lines.append(node.lineno)
            elif name == "assert_close":
                what = next((k.value for k in node.keywords if k.arg == "what"), node.args[2] if len(node.args) > 2 else None)
                if what is not None and prose(what):
                    lines.append(node.lineno)
    return sorted(lines)


@dataclass
class LabTranslation:
    """How one lab stands in one language."""

    lab: str
    lang: str
    path: Path
    exists: bool
    cells_total: int = 0
    cells_done: int = 0
    messages_total: int = 0
    messages_done: int = 0
    raw: int = 0           # trainee-facing messages still written in English only (see raw_messages)
    problems: list[str] = field(default_factory=list)   # anything that makes the lab's edition wrong
    stale: list[str] = field(default_factory=list)      # translated from an English text that changed since

    @property
    def complete(self) -> bool:
        return self.exists and not self.problems and not self.stale \
            and self.cells_done == self.cells_total and self.messages_done == self.messages_total


def examine(source: Path, lab: str, lang: str) -> tuple[LabTranslation, dict]:
    """Compare a lab's source with its ``lang`` catalogue; return the findings and the catalogue."""
    from .course.labsrc import read_lab

    path = catalogue_path(source, lang)
    report = LabTranslation(lab=lab, lang=lang, path=path, exists=path.is_file())
    nb, refs = read_lab(source, lab)
    catalogue = load_catalogue(path) if report.exists else {}
    cells = catalogue.get("cells", {})
    where = f"{lab} [{lang}]"
    keys = set()
    for cell, ref in zip(nb.cells, refs):
        if cell.cell_type != "markdown":
            continue
        report.cells_total += 1
        if not ref.key:
            report.problems.append(f"{where}: markdown {ref.describe()} has no key=\"...\" on its marker line")
            continue
        keys.add(ref.key)
        entry = cells.get(ref.key)
        if entry is None or not entry["text"].strip():
            report.problems.append(f"{where}: markdown cell '{ref.key}' (line {ref.line}) has no {lang} twin")
            continue
        report.cells_done += 1
        if entry["en_sha"] != en_hash(cell.source):
            report.stale.append(f"{where}: markdown cell '{ref.key}' (line {ref.line}) changed in English since "
                                f"its {lang} twin was reviewed (en_sha {entry['en_sha']} != {en_hash(cell.source)})")
    for key in sorted(set(cells) - keys):
        report.problems.append(f"{where}: {path.name} [cells.{key}] names no markdown cell of the lab")

    found = messages_in(source.read_text(encoding="utf-8"))
    entries = catalogue.get("messages", {})
    defaults: dict[str, Message] = {}
    for m in found:
        km = _KEY_RE.match(m.key)
        if not km or km.group(1) != lab_number(lab):
            report.problems.append(f"{where}: line {m.line}: msg key {m.key!r} must be '{lab_number(lab)}.<name>' "
                                   "with string literals for key and English text")
            continue
        if m.unfilled():
            report.problems.append(f"{where}: line {m.line}: msg {m.key!r} does not pass {sorted(m.unfilled())}")
        first = defaults.setdefault(m.key, m)
        if first.default != m.default:
            report.problems.append(f"{where}: line {m.line}: msg {m.key!r} has another English text than line {first.line}")
    report.messages_total = len(defaults)
    for key, m in defaults.items():
        entry = entries.get(key.split(".", 1)[1])
        if entry is None or not entry["text"].strip():
            report.problems.append(f"{where}: message {key!r} (line {m.line}) has no {lang} twin")
            continue
        report.messages_done += 1
        if fields(entry["text"]) != fields(m.default):
            report.problems.append(f"{where}: message {key!r} (line {m.line}): placeholders "
                                   f"{sorted(fields(entry['text']))} differ from the English {sorted(fields(m.default))}")
        if entry["en_sha"] != en_hash(m.default):
            report.stale.append(f"{where}: message {key!r} (line {m.line}) changed in English since its {lang} "
                                f"twin was reviewed (en_sha {entry['en_sha']} != {en_hash(m.default)})")
    raw = raw_messages(source.read_text(encoding="utf-8"))
    report.raw = len(raw)
    if raw:
        report.problems.append(f"{where}: {len(raw)} test message(s) in English only, not routed through "
                               f"techday.i18n.msg(): lines {', '.join(map(str, raw[:12]))}")
    names = {key.split(".", 1)[1] for key in defaults}
    for key in sorted(set(entries) - names):
        report.problems.append(f"{where}: {path.name} [messages.{key}] names no msg() call of the lab")
    return report, catalogue


def translate(nb, refs, catalogue: dict, lab: str, lang: str, path: Path) -> None:
    """Replace the markdown of a built notebook with its ``lang`` twins (code cells untouched)."""
    cells = catalogue.get("cells", {})
    for cell, ref in zip(nb.cells, refs):
        if cell.cell_type != "markdown":
            continue
        entry = cells.get(ref.key or "")
        if entry is None or not entry["text"].strip():
            raise TranslationError(f"{path}: lab {lab}, markdown {ref.describe()}"
                                   f"{' key ' + repr(ref.key) if ref.key else ' (no key)'}: no {lang} twin")
        cell.source = entry["text"].strip("\n")
    nb.metadata["techday"]["lang"] = lang


def released_messages(source: Path, lab: str, catalogue: dict, lang: str, hidden: bool) -> dict:
    """The catalogue written beside a built notebook; without ``hidden``, only messages that some
    visible code uses (hidden tests' texts stay with the grader)."""
    found = messages_in(source.read_text(encoding="utf-8"))
    visible = {m.key for m in found if not m.hidden}
    texts = {}
    for m in found:
        if not hidden and m.key not in visible:
            continue
        entry = catalogue.get("messages", {}).get(m.key.split(".", 1)[1])
        if entry is not None:
            texts[m.key] = entry["text"]
    return {"lab": lab, "lang": lang, "messages": dict(sorted(texts.items()))}


def read_released(path: Path, limit: int = 1 << 20) -> dict | None:
    """A released message catalogue found beside a submission (data from a stranger): a regular
    file, not a link, at most ``limit`` bytes, holding only text messages; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        return None
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    messages = parsed.get("messages") if isinstance(parsed, dict) else None
    if not isinstance(messages, dict):
        return None
    return {"lab": str(parsed.get("lab", "")), "lang": str(parsed.get("lang", "")),
            "messages": {k: v for k, v in messages.items() if isinstance(k, str) and isinstance(v, str)
                         and _KEY_RE.match(k)}}


def package_messages() -> list[Message]:
    """Every ``msg("techday.<name>", ...)`` call in the package's own modules."""
    found = []
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        for m in messages_in(path.read_text(encoding="utf-8")):
            if m.key.startswith("techday."):
                found.append(m)
    return found


def examine_package(lang: str) -> list[str]:
    """What the package's own ``lang`` catalogue lacks or has in excess, and what is stale."""
    path = Path(__file__).resolve().parent / PACKAGE_CATALOGUE.format(lang=lang)
    entries = load_catalogue(path).get("messages", {}) if path.is_file() else {}
    problems, seen = [], {}
    for m in package_messages():
        pm = _PACKAGE_KEY_RE.match(m.key)
        if not pm:
            problems.append(f"techday [{lang}]: msg key {m.key!r} must be 'techday.<name>'")
            continue
        if m.unfilled():
            problems.append(f"techday [{lang}]: msg {m.key!r} does not pass {sorted(m.unfilled())}")
        seen[pm.group(1)] = m
        entry = entries.get(pm.group(1))
        if entry is None or not entry["text"].strip():
            problems.append(f"techday [{lang}]: message {m.key!r} has no {lang} twin in {path.name}")
        elif fields(entry["text"]) != fields(m.default):
            problems.append(f"techday [{lang}]: message {m.key!r}: placeholders differ from the English")
        elif entry["en_sha"] != en_hash(m.default):
            problems.append(f"techday [{lang}]: message {m.key!r} changed in English since its {lang} twin was reviewed")
    problems += [f"techday [{lang}]: {path.name} [messages.{k}] names no msg() call" for k in sorted(set(entries) - set(seen))]
    return problems


def stamp_package(lang: str) -> int:
    """:func:`stamp` for the package's own catalogue."""
    path = Path(__file__).resolve().parent / PACKAGE_CATALOGUE.format(lang=lang)
    hashes = {("messages", m.key.split(".", 1)[1]): en_hash(m.default) for m in package_messages()}
    return _restamp(path, hashes)


def stamp(path: Path, source: Path, lab: str) -> int:
    """After a reviewer has checked the translation against the English: store the hash of the
    English each entry now stands beside. Returns how many entries changed."""
    from .course.labsrc import read_lab

    nb, refs = read_lab(source, lab)
    hashes = {("cells", r.key): en_hash(c.source) for c, r in zip(nb.cells, refs) if c.cell_type == "markdown" and r.key}
    for m in messages_in(source.read_text(encoding="utf-8")):
        if _KEY_RE.match(m.key):
            hashes[("messages", m.key.split(".", 1)[1])] = en_hash(m.default)
    return _restamp(path, hashes)


def _restamp(path: Path, hashes: dict) -> int:
    """Rewrite the ``en_sha`` lines of the catalogue ``path``. A catalogue that does not load
    (:func:`load_catalogue`: a syntax error, an entry without ``text``) stops here with its line:
    restamped line by line it was written back broken and reported as "0 entries restamped"."""
    load_catalogue(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    section, changed = None, 0
    for i, line in enumerate(lines):
        head = re.match(r"^\[(cells|messages)\.([A-Za-z0-9_-]+)\]\s*$", line)
        if head:
            section = (head.group(1), head.group(2))
            continue
        sha = re.match(r'^en_sha\s*=\s*"([0-9a-f]*)"\s*$', line)
        if sha and section in hashes and sha.group(1) != hashes[section]:
            lines[i] = f'en_sha = "{hashes[section]}"\n'
            changed += 1
    atomicfile.write_text(path, "".join(lines))  # a translator's file: never left half-written
    return changed


# --- how much is in which language --------------------------------------------------------------


def korean_share(texts: list[str]) -> tuple[int, int]:
    """(Korean words, all words) over ``texts``: a word is a whitespace-separated token with a
    letter in it; it is Korean when it holds Hangul."""
    words = [w for t in texts for w in t.split() if _WORD_HAS_LETTER.search(w)]
    return sum(1 for w in words if _HANGUL.search(w)), len(words)


# --- the course's documents (course/TRAINEES.md, INSTRUCTORS.md, RUNBOOK.md) --------------------
#
# A document's Korean twin is <name>.<lang>.md beside it, section for section: a section starts at a
# heading line (``#`` outside a fenced block; the text before the first heading is section 0), and
# each section of the twin is preceded by ``<!-- en_sha: <hash> -->``, the en_hash of the English
# section it was translated from. Fenced code blocks are byte-identical in both languages (the
# runbook's blocks are executed by tests/grading/test_runbook.py).

DOCUMENTS = ("course/TRAINEES.md", "course/INSTRUCTORS.md", "course/RUNBOOK.md")
NOTES_DIR = "course/notes"  # the instructor notes, one per lab: course/notes/<lab>.md


def documents(root: Path) -> list[str]:
    """Every course document with a Korean twin, relative to ``root``: the three guides, then each
    lab's instructor notes (the English ``<lab>.md``; its twin is ``<lab>.ko.md``)."""
    notes = sorted(p for p in (Path(root) / NOTES_DIR).glob("*.md") if len(p.suffixes) == 1)
    return [*DOCUMENTS, *(f"{NOTES_DIR}/{p.name}" for p in notes)]
_DOC_SHA_RE = re.compile(r"^<!-- en_sha: ([0-9a-f]*) -->\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


def doc_twin_path(path: Path, lang: str) -> Path:
    return path.with_name(f"{path.stem}.{lang}{path.suffix}")


def doc_sections(text: str) -> list[str]:
    """The sections of a markdown document: split before every heading outside a fenced block."""
    sections, current, fenced = [], [], False
    for line in text.splitlines(keepends=True):
        if _FENCE_RE.match(line):
            fenced = not fenced
        if not fenced and line.startswith("#") and any(s.strip() for s in current):
            sections.append("".join(current))
            current = []
        current.append(line)
    sections.append("".join(current))
    return [s for s in sections if s.strip()]


def doc_code_blocks(text: str) -> list[str]:
    """The fenced code blocks of ``text``, fences included, in order."""
    blocks, current = [], None
    for line in text.splitlines(keepends=True):
        if current is None and _FENCE_RE.match(line):
            current = [line]
        elif current is not None:
            current.append(line)
            if _FENCE_RE.match(line):
                blocks.append("".join(current))
                current = None
    return blocks


def twin_sections(text: str) -> list[tuple[str, str]]:
    """(stored en_sha, section text) for each section of a twin: a marker line starts a section."""
    out, sha, current = [], None, []
    for line in text.splitlines(keepends=True):
        m = _DOC_SHA_RE.match(line)
        if m:
            if sha is not None:
                out.append((sha, "".join(current)))
            sha, current = m.group(1), []
        elif sha is not None:
            current.append(line)
    if sha is not None:
        out.append((sha, "".join(current)))
    return out


def _doc_text(path: Path) -> str:
    """A course document's text; one that is not UTF-8 (saved by an editor in CP949) raises
    :class:`TranslationError` naming it: it was a UnicodeDecodeError traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TranslationError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None


def examine_doc(path: Path, lang: str) -> list[str]:
    """What keeps ``path``'s twin in ``lang`` from standing for it: a missing twin, a section in
    one language only, a stale section (the English changed since the twin was stamped), code
    blocks that differ, a heading level that differs."""
    twin = doc_twin_path(path, lang)
    name = path.name
    if not twin.exists():
        return [f"{name}: no {lang} twin ({twin.name})"]
    english = doc_sections(_doc_text(path))
    text = _doc_text(twin)
    translated = twin_sections(text)
    problems = []
    if text.split("<!-- en_sha:", 1)[0].strip() and not text.lstrip().startswith("<!--"):
        problems.append(f"{twin.name}: text before the first en_sha marker")
    if len(translated) != len(english):
        problems.append(f"{twin.name}: {len(translated)} sections, the English has {len(english)} "
                        "(a section exists in one language only)")
    for i, (en, (sha, ko)) in enumerate(zip(english, translated)):
        head = en.strip().splitlines()[0][:60]
        if not ko.strip():
            problems.append(f"{twin.name} section {i} ({head}): empty")
            continue
        if sha != en_hash(en):
            problems.append(f"{twin.name} section {i} ({head}): the English changed since its {lang} twin "
                            f"was reviewed (en_sha {sha} != {en_hash(en)})")
        if doc_code_blocks(en) != doc_code_blocks(ko):
            problems.append(f"{twin.name} section {i} ({head}): code blocks differ from the English")
        level = lambda s: re.match(r"#*", s.strip()).group(0)  # noqa: E731
        if level(en) != level(ko):
            problems.append(f"{twin.name} section {i} ({head}): heading level differs from the English")
    return problems


def stamp_doc(path: Path, lang: str) -> int:
    """After review: store, above each section of the twin, the hash of the English section at
    the same place. Returns how many markers changed."""
    twin = doc_twin_path(path, lang)
    english = doc_sections(_doc_text(path))
    lines = _doc_text(twin).splitlines(keepends=True)
    i, changed = 0, 0
    for n, line in enumerate(lines):
        m = _DOC_SHA_RE.match(line)
        if m:
            if i < len(english) and m.group(1) != en_hash(english[i]):
                lines[n] = f"<!-- en_sha: {en_hash(english[i])} -->\n"
                changed += 1
            i += 1
    atomicfile.write_text(twin, "".join(lines))
    return changed
