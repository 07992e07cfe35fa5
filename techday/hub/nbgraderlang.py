"""nbgrader's own JupyterLab buttons, tab and dialogs in the page's language: Korean in a Korean JupyterLab.

nbgrader's labextension (``@jupyter/nbgrader`` 0.9.6) writes its texts in its code and never asks JupyterLab's
translator for them (no language pack can reach them): the Assignments tab, Fetch, Submit, Validate and the
validation dialog stayed English in a Korean room. This step rewrites each of those texts in the installed
bundle into a choice made in the browser, on the language JupyterLab's translation plugin writes into the page
(``document.documentElement.lang = translator.languageCode``, in JupyterLab's ``jlab_core`` bundle)::

    t.innerText="Fetch"   ->   t.innerText=(/^ko(?:[-_]|$)/i.test(document.documentElement.lang)?"\\uac00...":"Fetch")

so one patched image serves both rooms, and a trainee who switches language in Settings > Language gets
nbgrader's texts in it too (JupyterLab reloads the page).

What it rewrites, and only that (an allow-list):

- a string literal whose whole value is a table entry's English, in one of the contexts of :data:`CONTEXTS`
  (``.innerText=``, ``title:`` in an object literal, ``setButtonLabel(``, ...), followed by ``,`` ``;`` ``)``
  or ``}``: an expression, never an object key, never in a template literal, a regular expression or a
  comment (the bundle is read with a small JavaScript lexer, :func:`string_literals`);
- the HTML string of the Assignments tab (``this.node.innerHTML='<div id="assignments"...'``): the texts
  between its tags and its ``title="..."`` attributes, as a choice between the whole Korean HTML and the
  whole English one.

Each English text must be found exactly as many times as the table says (:data:`ENTRIES`, counted in nbgrader
0.9.6), every occurrence in an allowed context, and the package must be 0.9.6; otherwise nothing is written
and the reason is given (an nbgrader upgrade: read its bundle again and update the table). The result is
checked by ``node --check`` before it is written (no node: refused, a Python look is not a parser).

nbgrader's own files are never changed. JupyterLab serves a labextension's files as immutable (a browser keeps
them for a year), so a rewritten file under nbgrader's name could be shadowed by a cached English one: the
rewritten chunk is written under a new name (the hash of its content, as the bundler names chunks), beside a
copy of the entry point (``remoteEntry.<hash>.js``) that loads it by that name, and ``package.json`` names the
new entry point (nbgrader's is kept as ``package.json.orig``). The files it writes start with a marker comment
holding the table's hash. ``--undo`` puts ``package.json`` back and removes them; a second run changes nothing
and says so; a changed table writes its files again from nbgrader's and removes the earlier table's.

The Korean texts are the package catalogue's (``techday/data/messages.ko.toml``, ``techday.nbgrader_ui_*``).
Not covered: texts nbgrader builds at run time in template literals (``Cannot validate: ${e}``, the cell type
change message), messages its server sends (the validator's own output, a version mismatch's text), the
instructors' formgrader, Create Assignment and course list, and any other nbgrader version (refused).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..i18n import PackageCatalogue, msg

PACKAGE = "@jupyter/nbgrader"
SUPPORTED_VERSIONS = ("0.9.6",)
KO_TEST = "/^ko(?:[-_]|$)/i.test(document.documentElement.lang)"  # ko, ko-KR, ko_KR; not kok (Konkani)
MARKER_RE = re.compile(r"^/\* techday nbgrader-lang ([0-9a-f]{12}) \*/\n")
ORIG_SUFFIX = ".orig"
PATCHED_KEY = "techdayNbgraderLang"  # in a patched package.json: the table's hash


class NbgraderLangError(RuntimeError):
    """The bundle cannot be patched (or restored); nothing was written. The message says why."""


# Where a literal may be rewritten: the code just before it (whitespace-free, as the minifier writes it).
# ``lazy``: a command's label, read when JupyterLab draws a menu or the palette (the plugin registers it before
# the translation plugin may have set the page's language), rewritten as a function JupyterLab calls then.
CONTEXTS = (  # the first that matches decides
    ("command-label", re.compile(r"\.addCommand\([\w$.]+,\{label:$"), True),
    ("assign", re.compile(r"[\w$\])]\.(?:innerText|textContent|title|label|caption)=$"), False),
    ("property", re.compile(r"[{,](?:title|body|tooltip|label):$"), False),
    ("button-label", re.compile(r"\.setButtonLabel\($"), False),
    ("default-label", re.compile(r"setButtonLabel\([\w$]=$"), False),
    ("react-child", re.compile(r"\.createElement\(\"[a-z]+\",null,$"), False),
)
HTML_CONTEXT = re.compile(r"\.node\.innerHTML=$")
AFTER = ",;)}"


@dataclass(frozen=True)
class Entry:
    key: str
    english: str
    korean: str | None
    literals: int = 0  # whole string literals holding exactly the English
    html: int = 0  # texts (between tags, or a title attribute) in the Assignments tab's HTML


class _Table:
    """Collects the entries: its :meth:`msg` has :func:`techday.i18n.msg`'s signature, so the package's
    catalogue checks (``examine_package``, ``techday i18n stamp``) see every text and its Korean twin."""

    def __init__(self, lang: str):
        self.cat = PackageCatalogue(lang)

    def msg(self, key: str, default: str, /, literals: int = 0, html: int = 0) -> Entry:  # noqa: A002
        return Entry(key, default, self.cat.texts.get(key), literals, html)


def entries(lang: str = "ko") -> list[Entry]:
    """The trainee-visible texts of nbgrader 0.9.6's labextension, with where and how often each is found."""
    t = _Table(lang)
    return [
        # The Validate button (a notebook's toolbar, the Assignments tab) and its dialogs.
        t.msg("techday.nbgrader_ui_validate", "Validate", literals=4),
        t.msg("techday.nbgrader_ui_validating", "Validating...", literals=2),
        t.msg("techday.nbgrader_ui_validate_assignment", "Validate Assignment", literals=1),
        t.msg("techday.nbgrader_ui_saving", "Saving...", literals=1),
        t.msg("techday.nbgrader_ui_validation_results", "Validation Results", literals=1),
        t.msg("techday.nbgrader_ui_validation_success", "Success! Your notebook passes all the tests.", literals=1),
        t.msg("techday.nbgrader_ui_cell_failed", "The following cell failed:", literals=1),
        t.msg("techday.nbgrader_ui_cell_passed", "The following cell passed:", literals=1),
        t.msg("techday.nbgrader_ui_cell_changed", "The source of the following cell has changed, but it should "
              "not have!", literals=1),
        t.msg("techday.nbgrader_ui_validate_error", "There was an error running the validate command:", literals=1),
        t.msg("techday.nbgrader_ui_validation_failed", "Validation failed", literals=3),
        t.msg("techday.nbgrader_ui_cannot_save", "Cannot save notebook", literals=1),
        t.msg("techday.nbgrader_ui_version_mismatch", "Version Mismatch", literals=1),
        t.msg("techday.nbgrader_ui_error_validating", "Error validating assignment.", literals=1),
        # The Assignments tab.
        t.msg("techday.nbgrader_ui_assignments", "Assignments", literals=1),
        t.msg("techday.nbgrader_ui_assignment_list", "Assignment List", literals=1),
        t.msg("techday.nbgrader_ui_assignments_for_course", "Released, downloaded, and submitted assignments for "
              "course:", html=1),
        t.msg("techday.nbgrader_ui_loading", "Loading, please wait...", literals=1, html=4),
        t.msg("techday.nbgrader_ui_toggle_dropdown", "Toggle Dropdown", html=1),
        t.msg("techday.nbgrader_ui_refresh_assignments", "Refresh assignments list", html=1),
        t.msg("techday.nbgrader_ui_released", "Released assignments", html=1),
        t.msg("techday.nbgrader_ui_none_to_fetch", "There are no assignments to fetch.", html=1),
        t.msg("techday.nbgrader_ui_downloaded", "Downloaded assignments", html=1),
        t.msg("techday.nbgrader_ui_none_downloaded", "There are no downloaded assignments.", html=1),
        t.msg("techday.nbgrader_ui_submitted", "Submitted assignments", html=1),
        t.msg("techday.nbgrader_ui_none_submitted", "There are no submitted assignments.", html=1),
        t.msg("techday.nbgrader_ui_error_courses", "Error fetching courses!", literals=1),
        t.msg("techday.nbgrader_ui_no_courses", "No courses found.", literals=1),
        t.msg("techday.nbgrader_ui_fetch", "Fetch", literals=1),
        t.msg("techday.nbgrader_ui_fetching", "Fetching...", literals=1),
        t.msg("techday.nbgrader_ui_error_fetching", "Error fetching assignment.", literals=1),
        t.msg("techday.nbgrader_ui_submit", "Submit", literals=2),
        t.msg("techday.nbgrader_ui_submitting", "submitting...", literals=1),
        t.msg("techday.nbgrader_ui_error_submitting", "Error submitting assignment.", literals=1),
        t.msg("techday.nbgrader_ui_not_submitted", "Assignment not submitted:", literals=1),
        t.msg("techday.nbgrader_ui_invalid_submission", "Invalid Submission", literals=1),
        t.msg("techday.nbgrader_ui_fetch_feedback", "Fetch Feedback", literals=1),
        t.msg("techday.nbgrader_ui_fetching_feedback", "Fetching Feedback...", literals=1),
        t.msg("techday.nbgrader_ui_error_feedback", "Error fetching feedback.", literals=1),
        t.msg("techday.nbgrader_ui_view_feedback", " (view feedback)", literals=1),
        t.msg("techday.nbgrader_ui_feedback_to_fetch", " (feedback available to fetch)", literals=1),
    ]


def table_hash(table: list[Entry]) -> str:
    blob = json.dumps([(e.english, e.korean, e.literals, e.html) for e in table], ensure_ascii=False)
    return hashlib.sha256((KO_TEST + blob).encode("utf-8")).hexdigest()[:12]


# --- reading JavaScript ----------------------------------------------------------------------------

_REGEX_AFTER_WORDS = {"return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw",
                      "instanceof", "yield", "await"}


@dataclass
class Literal:
    start: int  # the opening quote
    end: int  # after the closing quote
    raw: str  # with its quotes
    in_template: bool  # inside a template literal's ${...}


def string_literals(code: str) -> list[Literal]:
    """The ``'...'`` and ``"..."`` literals of ``code``, skipping comments, regular expressions and template
    literals' text. A lexer, not a parser: an input it cannot read raises :class:`NbgraderLangError`."""
    out: list[Literal] = []
    i, n = 0, len(code)
    templates: list[int] = []  # for each open ${ ... }: the brace depth inside it
    last = ""  # the last significant character or word in code

    def fail(why: str):
        raise NbgraderLangError(msg("techday.nbgrader_lang_unreadable", "cannot read nbgrader's bundle at offset "
                                    "{offset}: {why}", offset=i, why=why))

    def scan_template(j: int) -> int:
        """From just after a backquote or a closing } of ${}: to after the closing backquote (returns it) or
        just after a ${ (pushes a depth)."""
        while j < n:
            c = code[j]
            if c == "\\":
                j += 2
            elif c == "`":
                return j + 1
            elif c == "$" and code.startswith("${", j):
                templates.append(0)
                return j + 2
            else:
                j += 1
        fail(msg("techday.nbgrader_lang_open_template", "a template literal does not end"))
        return n

    while i < n:
        c = code[i]
        if c in " \t\r\n":
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and code[j] != c:
                if code[j] == "\\":
                    j += 1
                elif code[j] == "\n":
                    fail(msg("techday.nbgrader_lang_break_in_string", "a line break in a string literal"))
                j += 1
            if j >= n:
                fail(msg("techday.nbgrader_lang_open_string", "a string literal does not end"))
            out.append(Literal(i, j + 1, code[i:j + 1], bool(templates)))
            i, last = j + 1, '"'
        elif c == "`":
            i = scan_template(i + 1)
            last = "`"
        elif c == "/" and code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
        elif c == "/" and code.startswith("/*", i):
            j = code.find("*/", i + 2)
            if j < 0:
                fail(msg("techday.nbgrader_lang_open_comment", "a comment does not end"))
            i = j + 2
        elif c == "/" and (last == "" or last in "(,=:[!&|?{};+-*%<>~^" or last in _REGEX_AFTER_WORDS):
            j, klass = i + 1, False
            while j < n:
                d = code[j]
                if d == "\\":
                    j += 2
                    continue
                if d == "\n":
                    fail(msg("techday.nbgrader_lang_break_in_regex", "a line break in a regular expression"))
                if d == "[":
                    klass = True
                elif d == "]":
                    klass = False
                elif d == "/" and not klass:
                    break
                j += 1
            j += 1
            while j < n and (code[j].isalnum() or code[j] == "_"):
                j += 1  # flags
            i, last = j, "/re/"
        elif c == "{":
            if templates:
                templates[-1] += 1
            i, last = i + 1, c
        elif c == "}":
            if templates and templates[-1] == 0:
                templates.pop()
                i = scan_template(i + 1)
                last = "`"
                continue
            if templates:
                templates[-1] -= 1
            i, last = i + 1, c
        elif c.isalnum() or c in "_$":
            j = i
            while j < n and (code[j].isalnum() or code[j] in "_$"):
                j += 1
            last = code[i:j] if code[i].isalpha() or code[i] in "_$" else "0"
            i = j
        else:
            i, last = i + 1, c
    if templates:
        fail(msg("techday.nbgrader_lang_open_substitution", "a template literal's ${{ does not end"))
    return out


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0", "\\": "\\", "'": "'",
            '"': '"', "/": "/"}


def js_value(raw: str) -> str | None:
    """The value of a string literal (with its quotes); None for an escape this reader does not know (such a
    literal is never a table text: if one was, its count comes out short and the step refuses)."""
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1] if i + 1 < len(body) else ""
        if e in _ESCAPES and not (e == "0" and body[i + 2:i + 3].isdigit()):
            out.append(_ESCAPES[e])
            i += 2
        elif e == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2:i + 4]):
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif e == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif e == "\n":
            i += 2
        else:
            return None
    return "".join(out)


def js_string(text: str) -> str:
    """A double-quoted JavaScript literal of ``text``, ASCII only (the bundle's bytes stay ASCII)."""
    return json.dumps(text, ensure_ascii=True)


# --- the rewrite -----------------------------------------------------------------------------------


@dataclass
class Rewrite:
    text: str
    counts: dict[str, list[int]] = field(default_factory=dict)  # english -> [literals, html] found


def _html_sites(value: str, english: str) -> list[re.Match]:
    e = re.escape(html.escape(english, quote=True))
    return list(re.finditer(rf"(>\s*){e}(\s*<)|( title=\"){e}(\")", value))


def rewrite(code: str, table: list[Entry]) -> Rewrite:
    """``code`` with every table text made a choice on the page's language; counts what it found. Raises
    :class:`NbgraderLangError` for a text in a context outside the allow-list."""
    by_english = {e.english: e for e in table}
    found = {e.english: [0, 0] for e in table}
    edits: list[tuple[int, int, str]] = []
    for lit in string_literals(code):
        value = js_value(lit.raw)
        if value is None:
            continue
        before = re.sub(r"\s+", "", code[max(0, lit.start - 80):lit.start])
        entry = by_english.get(value)
        if entry is not None:
            found[value][0] += 1
            after = code[lit.end:lit.end + 1]
            ctx = next(((name, lazy) for name, pattern, lazy in CONTEXTS if pattern.search(before)), None)
            if lit.in_template or ctx is None or after not in AFTER or not after:
                raise NbgraderLangError(msg(
                    "techday.nbgrader_lang_context", "{text} at offset {offset} is in a context this step does not "
                    "rewrite (...{before}|{after}...): nbgrader changed? Read its bundle again and update "
                    "techday/hub/nbgraderlang.py", text=repr(value), offset=lit.start,
                    before=code[max(0, lit.start - 40):lit.start], after=code[lit.end:lit.end + 20]))
            choice = f"({KO_TEST}?{js_string(entry.korean or '')}:{lit.raw})"
            edits.append((lit.start, lit.end, "()=>" + choice if ctx[1] else choice))
        elif HTML_CONTEXT.search(before) and not lit.in_template:
            korean, hits = value, 0
            for e in table:
                if not e.html:
                    continue
                sites = _html_sites(value, e.english)
                found[e.english][1] += len(sites)
                hits += len(sites)
                esc = re.escape(html.escape(e.english, quote=True))
                ko = html.escape(e.korean or "", quote=True)
                korean = re.sub(rf"(>\s*){esc}(\s*<)|( title=\"){esc}(\")",
                                lambda m, ko=ko: (m.group(1) or m.group(3)) + ko + (m.group(2) or m.group(4)), korean)
            if hits:
                edits.append((lit.start, lit.end, f"({KO_TEST}?{js_string(korean)}:{lit.raw})"))
    out, pos = [], 0
    for start, end, new in edits:
        out.append(code[pos:start])
        out.append(new)
        pos = end
    out.append(code[pos:])
    return Rewrite("".join(out), found)


# --- the installed extension ----------------------------------------------------------------------


def extension_dir(prefix: str | os.PathLike | None = None) -> Path:
    """nbgrader's labextension in the environment at ``prefix`` (this Python's by default)."""
    return Path(prefix if prefix is not None else sys.prefix) / "share" / "jupyter" / "labextensions" / PACKAGE


def find_node() -> str | None:
    """``node`` on PATH, else the checkout's ``build/node/bin/node``."""
    found = shutil.which("node")
    if found:
        return found
    local = Path(__file__).resolve().parents[2] / "build" / "node" / "bin" / "node"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


def node_check(text: str, node: str | None = None) -> None:
    """``node --check`` on ``text``; raises :class:`NbgraderLangError` with node's words if it does not parse, or
    if there is no node to ask (a Python look at JavaScript is not a parser)."""
    node = node or find_node()
    if not node:
        raise NbgraderLangError(msg("techday.nbgrader_lang_no_node", "node is not installed: the rewritten bundle "
                                    "cannot be checked to parse, so it is not written (install nodejs; the course "
                                    "images have it)"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.js"
        path.write_text(text, encoding="utf-8")
        proc = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise NbgraderLangError(msg("techday.nbgrader_lang_no_parse", "the rewritten bundle does not parse "
                                    "(node --check): {why}", why=proc.stderr.strip()[-800:]))


@dataclass
class Result:
    ext: Path
    patched: list[Path] = field(default_factory=list)  # files written (new names) and package.json
    unchanged: bool = False
    restored: list[Path] = field(default_factory=list)  # package.json put back, rewritten files removed
    counts: dict[str, list[int]] = field(default_factory=dict)


def _marked(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return bool(MARKER_RE.match(fh.read(64)))


def _bundles(ext: Path) -> list[Path]:
    """nbgrader's own JavaScript files (never one this step wrote)."""
    return sorted(p for p in (ext / "static").glob("*.js") if p.is_file() and not _marked(p))


def _written(ext: Path) -> list[Path]:
    """The files this step wrote beside nbgrader's."""
    return sorted(p for p in (ext / "static").glob("*.js") if p.is_file() and _marked(p))


def _package_original(ext: Path) -> tuple[str, str]:
    """(package.json as it is, as nbgrader installed it)."""
    package = ext / "package.json"
    try:
        current = package.read_text(encoding="utf-8")
        meta = json.loads(current)
    except (OSError, ValueError) as exc:
        raise NbgraderLangError(msg("techday.nbgrader_lang_no_extension", "nbgrader's labextension is not "
                                    "readable at {path} ({why})", path=ext, why=exc)) from None
    if isinstance(meta, dict) and PATCHED_KEY in meta:
        orig = ext / ("package.json" + ORIG_SUFFIX)
        if not orig.is_file():
            raise NbgraderLangError(msg("techday.nbgrader_lang_orig_gone", "{path} is patched but its original "
                                        "{orig} is gone: reinstall nbgrader", path=package, orig=orig.name))
        return current, orig.read_text(encoding="utf-8")
    return current, current


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def patch(prefix: str | os.PathLike | None = None, *, ext: Path | None = None, node: str | None = None,
          table: list[Entry] | None = None) -> Result:
    """Make the installed extension speak the page's language. All checks come before any write.

    nbgrader's files are never changed: each rewritten chunk is written under a new name (its content hash, as
    the bundler names chunks), with a copy of the extension's entry point (``remoteEntry.*.js``) that loads it
    under a new name too, and ``package.json`` (kept as ``package.json.orig``) names that entry point. A browser
    that holds nbgrader's files in its cache (JupyterLab serves them as immutable) then fetches the new ones."""
    ext = ext if ext is not None else extension_dir(prefix)
    table = table if table is not None else entries()
    result = Result(ext)
    current_package, original_package = _package_original(ext)
    meta = json.loads(original_package)
    if meta.get("name") != PACKAGE or meta.get("version") not in SUPPORTED_VERSIONS:
        raise NbgraderLangError(msg("techday.nbgrader_lang_version", "{path}: {name} {version}; this step's table "
                                    "is for {package} {supported}: read the new bundle and update "
                                    "techday/hub/nbgraderlang.py", path=ext / "package.json", name=meta.get("name"),
                                    version=meta.get("version"), package=PACKAGE,
                                    supported=", ".join(SUPPORTED_VERSIONS)))
    missing = [e.key for e in table if not e.korean]
    if missing:
        raise NbgraderLangError(msg("techday.nbgrader_lang_no_korean", "no Korean text for {keys} in "
                                    "techday/data/messages.ko.toml", keys=", ".join(missing)))
    load = meta.get("jupyterlab", {}).get("_build", {}).get("load", "")
    entry = ext / load
    if not re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", load) or not entry.is_file() or _marked(entry):
        raise NbgraderLangError(msg("techday.nbgrader_lang_entry", "{path}: its entry point {load} is not "
                                    "nbgrader's remoteEntry", path=ext / "package.json", load=repr(load)))
    remote = entry.read_text(encoding="utf-8")
    digest = table_hash(table)
    marker = f"/* techday nbgrader-lang {digest} */\n"
    totals = {e.english: [0, 0] for e in table}
    new_files: dict[str, str] = {}  # name -> text
    for path in _bundles(ext):
        done = rewrite(path.read_text(encoding="utf-8"), table)
        for english, (lits, htmls) in done.counts.items():
            totals[english][0] += lits
            totals[english][1] += htmls
        if done.text == path.read_text(encoding="utf-8"):
            continue
        chunk = re.fullmatch(r"(\d+)\.([0-9a-f]+)\.js", path.name)
        # the entry point names a chunk's file and its ?v= query by the same map: twice in nbgrader 0.9.6
        if not chunk or remote.count(f'{chunk.group(1)}:"{chunk.group(2)}"') != 2:
            raise NbgraderLangError(msg("techday.nbgrader_lang_chunk", "{name}: {load} does not name it as nbgrader "
                                        "0.9.6's does (its file and its ?v= query): nbgrader changed? Nothing was "
                                        "changed", name=path.name, load=load))
        text = marker + done.text
        new_hash = _short(text)
        new_files[f"{chunk.group(1)}.{new_hash}.js"] = text
        remote = remote.replace(f'{chunk.group(1)}:"{chunk.group(2)}"', f'{chunk.group(1)}:"{new_hash}"')
    result.counts = totals
    wrong = [msg("techday.nbgrader_lang_count", "{text}: {literals} literal(s) and {html} HTML text(s), expected "
                 "{want_literals} and {want_html}", text=repr(e.english), literals=totals[e.english][0],
                 html=totals[e.english][1], want_literals=e.literals, want_html=e.html)
             for e in table if totals[e.english] != [e.literals, e.html]]
    if wrong:
        raise NbgraderLangError(msg("techday.nbgrader_lang_counts", "nbgrader's bundle in {path} is not the one this "
                                    "table was made for (an nbgrader upgrade?): {counts}. Nothing was changed",
                                    path=ext, counts="; ".join(wrong)))
    if new_files:
        remote_text = marker + remote
        remote_name = f"remoteEntry.{_short(remote_text)}.js"
        new_files[remote_name] = remote_text
        new_meta = json.loads(original_package)
        new_meta["jupyterlab"]["_build"]["load"] = f"static/{remote_name}"
        new_meta[PATCHED_KEY] = digest
        new_package = json.dumps(new_meta, indent=2, ensure_ascii=False) + "\n"
    else:  # no text of the table in this bundle: nbgrader's own files
        new_package = original_package
    stale = [p for p in _written(ext) if p.name not in new_files]
    same = current_package == new_package and not stale and all(
        (ext / "static" / name).is_file() and (ext / "static" / name).read_text(encoding="utf-8") == text
        for name, text in new_files.items())
    if same:
        result.unchanged = True
        return result
    for text in new_files.values():
        node_check(text, node)
    mode = entry.stat().st_mode & 0o777
    for name, text in new_files.items():
        _write(ext / "static" / name, text, mode)
        result.patched.append(ext / "static" / name)
    package = ext / "package.json"
    orig = ext / ("package.json" + ORIG_SUFFIX)
    if new_package != original_package:
        if not orig.is_file():
            shutil.copy2(package, orig)
        _write(package, new_package, package.stat().st_mode & 0o777)
        result.patched.append(package)
    else:
        _write(package, original_package, package.stat().st_mode & 0o777)
        orig.unlink(missing_ok=True)
        result.restored.append(package)
    for path in stale:  # an earlier table's files, named by no package.json now
        path.unlink()
    return result


def undo(prefix: str | os.PathLike | None = None, *, ext: Path | None = None) -> Result:
    """nbgrader's extension as it installed it: ``package.json`` from its ``.orig``, the files this step wrote
    removed (nbgrader's own were never changed)."""
    ext = ext if ext is not None else extension_dir(prefix)
    result = Result(ext)
    current, original = _package_original(ext)
    package = ext / "package.json"
    if current != original:
        os.replace(ext / ("package.json" + ORIG_SUFFIX), package)
        result.restored.append(package)
    for path in _written(ext):
        path.unlink()
        result.restored.append(path)
    return result


def copy_original(src: Path, dest: Path) -> Path:
    """A copy of the nbgrader labextension at ``src`` as nbgrader installed it (without what this step wrote)."""
    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=lambda folder, names: [
        n for n in names if n.endswith(ORIG_SUFFIX) or (n.endswith(".js") and _marked(Path(folder) / n))])
    _, original = _package_original(src)
    (dest / "package.json").write_text(original, encoding="utf-8")
    return dest


def overlay(target: Path, prefix: str | os.PathLike | None = None, node: str | None = None) -> Path | None:
    """A patched copy of this environment's nbgrader labextension under ``target/labextensions`` (a folder for
    ``JUPYTER_PATH``, whose labextensions JupyterLab prefers to the environment's): ``techday lab``'s, so a
    trainee's own environment is never changed. Made again from the installed one on every call (an upgrade
    of nbgrader is then refused here, with its reason). Returns ``target``, or None where nbgrader's
    labextension is not installed."""
    src = extension_dir(prefix)
    if not (src / "package.json").is_file():
        return None
    dest = target / "labextensions" / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=target, prefix=".nbgrader.", suffix=".part"))
    try:
        copy_original(src, fresh)
        patch(ext=fresh, node=node)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(fresh, dest)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return target
