"""Certificates that say who, which track, what score and which run, and that cannot be forged.

- **course key**: 32 random bytes on the grading host, ``$TECHDAY_COURSE_KEY`` or
  ``build/grading/course.key`` (created on first use with ``secrets.token_bytes(32)``, mode 0600).
  It is never in the repository or the trainee image (``build/`` is ignored by git and not copied
  into the image); the sandbox that runs trainees' code sees neither the file nor the variable.
- **verification code**: HMAC-SHA256 under the course key of the certificate's payload (course id,
  run, track, the track's title as the certificate shows it, trainee id, name, score as points/max,
  date; certificates made before the title was signed, "v1", have no title), its first 100 bits written as 20
  Crockford base32 characters in groups of five (``7KQ2M-4XH9P-...``): short enough to type, case
  and ``O``/``0``, ``I``/``L``/``1`` forgiving. The code is only the MAC; the payload travels
  beside it: in the certificate itself (a JSON block in the HTML, the PDF's Keywords) and in the
  register ``certificates.json`` that ``techday grade results`` keeps, so ``techday grade verify
  CODE`` looks a typed code up and ``--file`` checks a certificate without the register. An HTML
  certificate's block also carries the page's own code (:func:`page_code`): every byte of the page.
- **file names**: :func:`certificate_stems`, one per trainee id, injective also on case-insensitive
  and normalising file systems, Hangul kept.
- **roster**: display names from nbgrader's student table and/or a CSV (``id,name``), with one clear
  line for each thing wrong in it.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

KEY_ENV = "TECHDAY_COURSE_KEY"
KEY_BYTES = 32
CODE_CHARS = 20  # 100 bits of the MAC
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DOMAIN = b"techday certificate v1\0"
FIELDS = ("course", "run", "track", "trainee", "name", "score", "date")
# v2 signs the track's title too: everything a certificate shows in a data-field comes from its
# payload, none from the syllabus of the day it is verified (a track renamed, or another course's).
DOMAIN_V2 = b"techday certificate v2\0"
FIELDS_V2 = (*FIELDS, "title")
PDF_KEYWORDS = "techday-certificate:"


class CertificateError(Exception):
    """A key, register or certificate that cannot be used; the message says what to do."""


# --------------------------------------------------------------------------------------------- key


def key_path(course) -> Path:
    env = os.environ.get(KEY_ENV)
    return Path(env).expanduser().resolve() if env else course.build_dir / "grading" / "course.key"


def load_key(course, create: bool = False) -> tuple[bytes, Path, list[str]]:
    """The course key, its path and warnings. ``create``: make one (mode 0600) if there is none."""
    path = key_path(course)
    notes = []
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole beside it, then linked into place (a link, unlike a rename, never replaces a key
        # another run made at the same moment): a stop between creating the file and writing it used to
        # leave an empty key, refused ever after and never made again.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(secrets.token_bytes(KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass  # made at the same moment by another run: use that one
        else:
            notes.append(f"course key created: {path} (mode 0600; back it up on the grading host: without it "
                         "no code issued under it can be verified)")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"no course key at {path}: codes are made and checked only on the grading host "
                               f"that holds it (set ${KEY_ENV} to its path)") from None
    except OSError as exc:
        raise CertificateError(f"course key {path}: {exc.strerror or exc}") from None
    if len(key) < KEY_BYTES:
        raise CertificateError(f"course key {path} has {len(key)} bytes, not at least {KEY_BYTES}: "
                               "not a key this kit made")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        notes.append(f"course key {path} can be read by others (mode {mode:04o}): chmod 600 {path}")
    root = Path(course.root).resolve()
    if path.is_relative_to(root) and not path.is_relative_to(root / "build"):
        notes.append(f"course key {path} is inside the repository, outside build/: keep it out of git and the image")
    return key, path, notes


# -------------------------------------------------------------------------------------------- code


def number(x: float) -> str:
    """3 decimals at most, no trailing zeros: 4 -> '4', 2.5 -> '2.5'."""
    text = f"{round(float(x), 3):.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def payload(course_id: str, run: str, track: str, trainee: str, name: str, points: float, max_points: float,
            date: str, title: str | None = None) -> dict:
    """A certificate's payload; with ``title`` (the track's title it shows) a v2 payload."""
    data = {"course": course_id, "run": run, "track": track, "trainee": trainee, "name": name,
            "score": f"{number(points)}/{number(max_points)}", "date": date}
    return data if title is None else {**data, "title": title}


def fields(data: dict) -> tuple[str, ...]:
    """The fields a payload's code signs: v2 (with the track's title) where it has a ``title``."""
    return FIELDS_V2 if "title" in data else FIELDS


def _message(data: dict) -> bytes:
    names = fields(data)
    missing = [k for k in names if not isinstance(data.get(k), str)]
    if missing:
        raise CertificateError(f"certificate fields missing or not text: {', '.join(missing)}")
    body = {k: data[k] for k in names}
    domain = DOMAIN_V2 if names == FIELDS_V2 else DOMAIN
    return domain + json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def make_code(key: bytes, data: dict) -> str:
    mac = hmac.new(key, _message(data), hashlib.sha256).digest()
    bits = int.from_bytes(mac[:13], "big") >> (13 * 8 - CODE_CHARS * 5)
    chars = "".join(CROCKFORD[(bits >> (5 * i)) & 31] for i in reversed(range(CODE_CHARS)))
    return "-".join(chars[i:i + 5] for i in range(0, CODE_CHARS, 5))


def normalize_code(text: str) -> str | None:
    """A typed code in its printed form (``XXXXX-XXXXX-XXXXX-XXXXX``), or None if it cannot be one."""
    chars = re.sub(r"[\s-]+", "", text).upper().translate(str.maketrans("OIL", "011"))
    if len(chars) != CODE_CHARS or any(c not in CROCKFORD for c in chars):
        return None
    return "-".join(chars[i:i + 5] for i in range(0, CODE_CHARS, 5))


def genuine(key: bytes, data: dict, code: str) -> bool:
    try:
        expected = make_code(key, data)
    except CertificateError:
        return False
    return hmac.compare_digest(expected, normalize_code(code) or "")


# -------------------------------------------------------------------------------------- file names

_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_MAX_PLAIN_BYTES = 100


def _caseless(c: str) -> bool:
    """A character with no case that file systems cannot fold into another: Hangul, CJK, kana, marks."""
    return (ord(c) > 127 and unicodedata.category(c) in ("Lo", "Lm", "Mn", "Mc", "Nd")
            and c.lower() == c == c.upper() and c.casefold() == c)


def _plain(trainee: str) -> bool:
    """The id can be its own file name, unchanged, on every common file system."""
    return (bool(trainee) and unicodedata.is_normalized("NFC", trainee)
            and all(c in "abcdefghijklmnopqrstuvwxyz0123456789._-" or _caseless(c) for c in trainee)
            and not trainee.startswith((".", "-")) and not trainee.endswith(".")
            and trainee.split(".")[0] not in _RESERVED and len(trainee.encode("utf-8")) <= _MAX_PLAIN_BYTES)


def certificate_stem(trainee: str, digits: int = 12) -> str:
    """The file name (without suffix) of a trainee's certificates. An id that is safe as it is, and
    that no case-insensitive or Unicode-normalising file system can confuse with another, is kept:
    lower-case ASCII letters, digits, ``.``, ``_``, ``-`` and caseless letters such as Hangul
    (``kim.minsu``, ``김민준``, ``trainee-007``). Any other id (``Kim``, ``a/b``, ``..``, an id with
    spaces, in NFD, or too long) becomes a readable slug, ``~`` and the first ``digits`` hex digits of
    the SHA-256 of the id (``kim~3f0a...``): plain ids never contain ``~``, so the two kinds never meet."""
    if _plain(trainee):
        return trainee
    slug, size = [], 0
    for c in unicodedata.normalize("NFC", trainee):
        c = c.lower() if (c.lower().isalnum() or c in "._-") and len(c.lower()) == 1 else "_"
        size += len(c.encode("utf-8"))
        if size > 60:
            break
        slug.append(c)
    text = re.sub(r"_+", "_", "".join(slug)).lstrip("._-").rstrip(".") or "id"
    return f"{text}~{hashlib.sha256(trainee.encode('utf-8')).hexdigest()[:digits]}"


def certificate_stems(trainees, digits: int = 12) -> dict[str, str]:
    """Stems for a set of ids, checked to be distinct as a case-insensitive, normalising file system
    sees them; where two would still meet (a clash of hash prefixes), both take the whole hash."""
    stems = {t: certificate_stem(t, digits) for t in trainees}

    def folded(stem: str) -> str:
        return unicodedata.normalize("NFC", stem).casefold()

    seen: dict[str, list[str]] = {}
    for trainee, stem in stems.items():
        seen.setdefault(folded(stem), []).append(trainee)
    for clash in (ids for ids in seen.values() if len(ids) > 1):
        for trainee in clash:
            if not _plain(trainee):
                stems[trainee] = certificate_stem(trainee, 64)
    return stems


# ------------------------------------------------------------------------------------------ roster


def display_name(first: str | None, last: str | None) -> str:
    """nbgrader's first and last name as a person writes them: family name first, no space, for
    Hangul (김 + 민준 -> 김민준); first name first otherwise."""
    first, last = " ".join((first or "").split()), " ".join((last or "").split())
    if first and last and all(any("\uac00" <= c <= "\ud7a3" for c in part) for part in (first, last)):
        return unicodedata.normalize("NFC", last + first)
    return unicodedata.normalize("NFC", " ".join(p for p in (first, last) if p))


@dataclass
class Roster:
    names: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # id -> line in the CSV
    notes: list[str] = field(default_factory=list)       # warnings: the roster was used
    problems: list[str] = field(default_factory=list)    # the roster (or part of it) could not be used


def read_roster(path: Path) -> Roster:
    """Names from a CSV with (at least) the columns ``id`` and ``name``; UTF-8 (a BOM is fine)."""
    roster = Roster()
    label = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        roster.problems.append(f"roster {path}: {exc.strerror or exc}: no names read from it")
        return roster
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = ""
        try:
            raw.decode("cp949")
            hint = " (it reads as CP949/EUC-KR: save it as 'CSV UTF-8')"
        except UnicodeDecodeError:
            pass
        line = raw[:exc.start].count(b"\n") + 1
        roster.problems.append(f"roster {label}: not UTF-8 (line {line}, byte 0x{raw[exc.start]:02x}){hint}: "
                               "no names read from it")
        return roster
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            lines.append((reader.line_num, row))
    except csv.Error as exc:  # a field over csv's size limit, ...: one line, not a stop for the whole room
        roster.problems.append(f"roster {label} line {reader.line_num}: {exc}: no names read from it")
        return roster
    header = lines[0][1] if lines else None
    if not header:
        roster.problems.append(f"roster {label}: empty: no names read from it")
        return roster
    columns = [h.strip().lower() for h in header]
    lacking = [need for need in ("id", "name") if need not in columns]
    if lacking:
        roster.problems.append(f"roster {label}: no {' and no '.join(map(repr, lacking))} column (found: "
                               f"{', '.join(map(repr, header))}; it needs id,name): no names read from it")
        return roster
    dupes = {c for c in columns if columns.count(c) > 1 and c in ("id", "name")}
    if dupes:
        roster.problems.append(f"roster {label}: column(s) {', '.join(sorted(dupes))} twice: no names read from it")
        return roster
    unknown = [h for h, c in zip(header, columns) if c and c not in ("id", "name")]
    if unknown:
        roster.notes.append(f"roster {label}: column(s) {', '.join(map(repr, unknown))} not used (only id and name are)")
    i_id, i_name = columns.index("id"), columns.index("name")
    rows: dict[str, list[tuple[int, str]]] = {}
    for lineno, row in lines[1:]:
        if not any(cell.strip() for cell in row):
            continue
        trainee = row[i_id].strip() if i_id < len(row) else ""
        name = unicodedata.normalize("NFC", " ".join(row[i_name].split())) if i_name < len(row) else ""
        if not trainee:
            roster.notes.append(f"roster {label} line {lineno}: no id (name {name!r}): row not used")
            continue
        rows.setdefault(trainee, []).append((lineno, name))
    for trainee, seen in rows.items():
        roster.lines[trainee] = seen[0][0]
        names = list(dict.fromkeys(name for _, name in seen if name))
        where = ", ".join(str(line) for line, _ in seen)
        if len(names) > 1:
            roster.notes.append(f"roster {label} lines {where}: {trainee} listed with different names "
                                f"({', '.join(map(repr, names))}): none is used until the roster says one")
        elif names:
            roster.names[trainee] = names[0]
            if len(seen) > 1:
                roster.notes.append(f"roster {label} lines {where}: {trainee} listed {len(seen)} times (same name)")
        else:
            roster.notes.append(f"roster {label} line{'s' if len(seen) > 1 else ''} {where}: {trainee} has no name")
    return roster


def resolve_names(students: list[str], gradebook: dict[str, str], roster: Roster | None,
                  label: str = "roster") -> tuple[dict[str, tuple[str, str]], list[str]]:
    """id -> (display name, where it came from: "roster", "gradebook" or "id"), and notes: a name in
    the roster wins over the gradebook's; an id with neither shows the id itself."""
    names: dict[str, tuple[str, str]] = {}
    notes = []
    known = set(students)
    for trainee in students:
        listed = roster.names.get(trainee) if roster else None
        stored = gradebook.get(trainee) or None
        # A name is printed on the certificate and by `verify`: one with a character that is not
        # printable (a terminal escape, a bidirectional override that shows it as another name) is
        # not used (an allow-list: str.isprintable).
        for where, text in ((label, listed), ("nbgrader's student table", stored)):
            if text and not text.isprintable():
                notes.append(f"{printable(trainee)}: the {where} gives a name with a character that is not "
                             f"printable ({printable(text)}): not used")
        listed = listed if listed and listed.isprintable() else None
        stored = stored if stored and stored.isprintable() else None
        if listed:
            names[trainee] = (listed, "roster")
            if stored and stored != listed:
                notes.append(f"{trainee}: the {label} says {listed!r}, nbgrader's student table {stored!r}: "
                             f"{listed!r} is used")
        elif stored:
            names[trainee] = (stored, "gradebook")
        else:
            names[trainee] = (trainee, "id")
    if roster:
        for trainee, line in sorted(roster.lines.items(), key=lambda kv: kv[1]):
            if trainee not in known:
                notes.append(f"{label} line {line}: {trainee} is not in the gradebook (no such trainee graded): "
                             "a typo, or an absent trainee?")
    return names, notes


# ---------------------------------------------------------------------------------------- register


class Register:
    """``certificates.json``: every certificate issued, by code, with its payload and whether the
    latest ``techday grade results`` of its run still issues it."""

    def __init__(self, path: Path, data: dict | None = None):
        self.path = path
        self.data = data or {"version": 1, "runs": {}, "certificates": {}}

    @classmethod
    def load(cls, path: Path, keep_aside: bool = True) -> tuple[Register, list[str]]:
        """The register at ``path`` (empty if none). One that cannot be read is kept aside as
        ``certificates.json.unreadable-<time>`` and a new one started; with ``keep_aside=False``
        (verifying, which changes nothing) it is an error."""
        if not path.exists():
            return cls(path), []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("certificates"), dict):
                raise ValueError("not a register this kit writes")
            data.setdefault("runs", {})
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            if not keep_aside:
                raise CertificateError(f"register {path} unreadable ({exc})") from None
            kept = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            path.replace(kept)
            return cls(path), [f"register {path} unreadable ({exc}): kept as {kept.name}, a new one is started"]
        return cls(path, data), []

    @property
    def certificates(self) -> dict[str, dict]:
        return self.data["certificates"]

    def last_run(self, course_id: str) -> str | None:
        return self.data["runs"].get(course_id)

    def find(self, data: dict) -> dict | None:
        """The entry that certifies the same as ``data``, whatever its date."""
        same = [k for k in FIELDS_V2 if k != "date"]
        for entry in self.certificates.values():
            if all(entry.get(k) == data.get(k) for k in same):
                return entry
        return None

    def issue(self, course_id: str, run: str, entries: dict[str, dict], keep: set[str] = frozenset(),
              tracks: set[str] | None = None) -> list[str]:
        """Record this run's certificates. Those issued before in the same run, of a track decided now
        (``tracks``), that are neither issued again nor in ``keep`` (held now, but issued before with
        the same fields) are withdrawn: the trainee's score, name or pass changed."""
        today = time.strftime("%Y-%m-%d")
        withdrawn = []
        for code, entry in self.certificates.items():
            if (entry.get("course") == course_id and entry.get("run") == run and entry.get("status") == "issued"
                    and code not in entries and code not in keep and (tracks is None or entry.get("track") in tracks)):
                entry["status"] = "withdrawn"
                entry["withdrawn"] = today
                withdrawn.append(f"{entry.get('track')}/{entry.get('trainee')}")
        for code, entry in entries.items():
            self.certificates[code] = {**entry, "status": "issued"}
        self.data["runs"][course_id] = run
        return withdrawn

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)


# ------------------------------------------------------------------------------ what a certificate shows


def visible_fields(course, data: dict, code: str, lang: str = "en") -> dict[str, str]:
    """The texts a certificate shows, from its payload, in ``lang`` (the score line; the other fields are
    names, codes and numbers in every language): written by the HTML and PDF, and compared by ``verify
    --file`` with what an HTML certificate shows (:func:`shown_languages`)."""
    from ..i18n import PackageCatalogue

    if "title" in data:  # v2: the title it was issued with
        title = data["title"]
    else:  # v1: today's syllabus says it (not signed), and only of this course's own tracks
        track = course.tracks.get(data["track"]) if course and data.get("course") == course.id else None
        title = track.title if track else data["track"]
    points, _, maximum = data["score"].partition("/")
    try:
        percent = f" ({100 * float(points) / float(maximum):.0f}%)" if float(maximum) else ""
    except ValueError:
        percent = ""
    score = PackageCatalogue(lang).msg("techday.cert_score", "{points} of {maximum} points", points=points,
                                       maximum=maximum)
    return {"name": data["name"], "trainee": data["trainee"],
            "track": title,
            "score": score + percent,
            "run": f"{data['course']} / {data['run']}", "date": data["date"], "code": code}


def shown_languages(page_lang: str | None) -> list[str]:
    """The languages whose texts a page that says ``<html lang="page_lang">`` may show: its own (where the
    package speaks it) and English, which every certificate showed before its score line was translated."""
    from .feedback import known_language

    lang = known_language(page_lang)
    return ["en"] if lang in (None, "en") else [lang, "en"]


def embedded(data: dict, code: str) -> dict:
    return {**{k: data[k] for k in fields(data)}, "code": code}


BLOCK_OPEN, BLOCK_CLOSE = '<script type="application/json" id="techday-certificate">', "</script>"
BLOCK = re.compile(re.escape(BLOCK_OPEN) + r"(.*?)" + re.escape(BLOCK_CLOSE), re.S)
PAGE_DOMAIN = b"techday certificate page v1\0"


def html_block(data: dict, code: str, page: str | None = None) -> str:
    """The JSON block of an HTML certificate: its payload, code and (``page``) the page's own code."""
    doc = embedded(data, code) if page is None else {**embedded(data, code), "page": page}
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c")
    return f"{BLOCK_OPEN}{text}{BLOCK_CLOSE}"


def page_code(key: bytes, code: str, page: str) -> str:
    """The code of a whole HTML certificate: HMAC-SHA256 under the course key of the page as written,
    its JSON block emptied (``page``), with the certificate's code. Every byte a browser reads is in it:
    text outside the data-field elements, a style that hides them, a script. Not part of the
    certificate's code, so a page made again (another template, language or syllabus) keeps its code."""
    return hmac.new(key, PAGE_DOMAIN + code.encode("utf-8") + b"\0" + page.encode("utf-8"), hashlib.sha256).hexdigest()


def emptied(text: str) -> str | None:
    """An HTML certificate with its JSON block's content taken out (what :func:`page_code` signs), or
    None without exactly one block."""
    blocks = list(BLOCK.finditer(text))
    if len(blocks) != 1:
        return None
    return text[:blocks[0].start(1)] + text[blocks[0].end(1):]


def pdf_keywords(data: dict, code: str) -> str:
    raw = json.dumps(embedded(data, code), ensure_ascii=False, sort_keys=True).encode("utf-8")
    return PDF_KEYWORDS + base64.urlsafe_b64encode(raw).decode("ascii")


class _Fields(HTMLParser):
    """The text of each element with a ``data-field`` attribute."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, list[str]] = {}
        self.stack: list[tuple[str, str | None]] = []
        self.lang: str | None = None  # the page's <html lang="..">

    def handle_starttag(self, tag, attrs):
        if tag == "html" and self.lang is None:
            self.lang = dict(attrs).get("lang") or ""
        if tag in ("br", "meta", "link", "img", "hr", "input"):
            return
        name = dict(attrs).get("data-field")
        self.stack.append((tag, name))
        if name:
            self.fields.setdefault(name, []).append("")

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, name in self.stack:
            if name:
                self.fields[name][-1] += data


def read_certificate(path: Path) -> tuple[dict, str, dict[str, list[str]] | None]:
    """(payload, code, visible fields) of an HTML certificate, or (payload, code, None) of a PDF."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"{path}: {exc.strerror or exc}") from None
    if raw.startswith(b"%PDF"):
        m = re.search(rb"/Keywords \(" + re.escape(PDF_KEYWORDS.encode()) + rb"([A-Za-z0-9_=-]+)\)", raw)
        if not m:
            raise CertificateError(f"{path}: a PDF without a techday certificate's data")
        try:
            doc = json.loads(base64.urlsafe_b64decode(m.group(1)).decode("utf-8"))
        except ValueError:
            raise CertificateError(f"{path}: its certificate data is damaged") from None
        shown = None
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CertificateError(f"{path}: neither a PDF nor a UTF-8 HTML certificate") from None
        blocks = BLOCK.findall(text)
        if len(blocks) != 1:
            raise CertificateError(f"{path}: {'no' if not blocks else 'more than one'} techday certificate data block")
        try:
            doc = json.loads(blocks[0])
        except ValueError:
            raise CertificateError(f"{path}: its certificate data is damaged") from None
        parser = _Fields()
        parser.feed(text)
        # The parser has decoded the page's character references once (convert_charrefs), as a browser
        # does; a second html.unescape would read text the page shows as "&amp;" as "&".
        shown = {k: [" ".join(v.split()) for v in vs] for k, vs in parser.fields.items()}
    if not isinstance(doc, dict) or not isinstance(doc.get("code"), str):
        raise CertificateError(f"{path}: its certificate data has no code")
    return {k: doc.get(k) for k in fields(doc)}, doc["code"], shown


def page_language(path: Path) -> str | None:
    """What an HTML certificate's ``<html lang="..">`` says, or None."""
    try:
        parser = _Fields()
        parser.feed(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return parser.lang or None


def read_page(path: Path) -> tuple[str | None, object]:
    """An HTML certificate's text with its JSON block emptied, and the page code its block carries
    (None where it has none); (None, None) where there is not exactly one block, or one not written as
    :func:`html_block` writes it (the page code does not cover the block: raw ``<!--<script>`` in it
    would make a browser read on past its end and hide the page after it)."""
    try:
        text = path.read_bytes().decode("utf-8")
        block = BLOCK.findall(text)[0]
        doc = json.loads(block)
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        return None, None
    if not isinstance(doc, dict) or block != json.dumps(doc, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c"):
        return None, None
    return emptied(text), doc.get("page")


# ------------------------------------------------------------------------------------------ verify


@dataclass
class Verdict:
    ok: bool
    lines: list[str]
    data: dict | None = None


def printable(text) -> str:
    """``text`` as a line of ``verify``'s report may show it: every character that is not printable (a
    newline, a terminal escape such as ESC M that moves the cursor up over the NOT GENUINE line, a C1
    control, a bidirectional override) written as its Python escape (``\\x1b``). An allow-list
    (:meth:`str.isprintable`): a certificate's fields are whatever its maker wrote, key or no key."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _describe(course, data: dict, code: str, entry: dict | None) -> list[str]:
    shown = {k: printable(v) for k, v in visible_fields(course, data, code).items()}
    lines = [f"trainee: {printable(data['trainee'])}", f"name:    {printable(data['name'])}",
             f"track:   {printable(data['track'])} ({shown['track']}"
             + (")" if "title" in data else ": today's syllabus; a v1 code does not sign the title)"),
             f"score:   {shown['score']}",
             f"run:     {shown['run']}", f"date:    {printable(data['date'])}"]
    if entry and entry.get("file"):
        lines.append(f"file:    {printable(entry['file'])}")
    return lines


def verify(course, key: bytes, register: Register | None, code: str | None = None,
           file: Path | None = None) -> Verdict:
    """Whether a code (looked up in the register) and/or a certificate file is genuine, and what it certifies."""
    typed = None
    if code is not None:
        typed = normalize_code(code)
        if typed is None:
            return Verdict(False, [f"{code!r} is not a certificate code (20 letters and digits, "
                                   "e.g. 7KQ2M-4XH9P-ZT0AB-CD3EF)"])
    shown = None
    if file is not None:
        try:
            data, file_code, shown = read_certificate(file)
        except CertificateError as exc:
            return Verdict(False, [str(exc)])
        if typed and normalize_code(file_code) != typed:
            return Verdict(False, [f"{file} carries the code {printable(file_code)}, not {typed}"])
        typed = normalize_code(file_code)
        if typed is None:
            return Verdict(False, [f"{file}: {file_code!r} is not a certificate code"])
        entry = register.certificates.get(typed) if register else None
    else:
        if register is None:
            return Verdict(False, ["no register (certificates.json) to look the code up in: "
                                   "run `techday grade results` first, or check a certificate with --file"])
        entry = register.certificates.get(typed)
        if entry is None:
            return Verdict(False, [f"NOT GENUINE: no certificate with the code {typed} was issued "
                                   f"(register {register.path}): mistyped or forged"])
        data = {k: entry.get(k) for k in fields(entry)}
    if not genuine(key, data, typed):
        what = "the certificate's data was edited, or it was made under another key" if file else \
            "the register entry was edited, or made under another key"
        complete = all(isinstance(data.get(k), str) for k in fields(data))
        return Verdict(False, [f"NOT GENUINE: the code {typed} does not match what it claims to certify: {what}",
                               *(f"  claims {line}" for line in (_describe(course, data, typed, None) if complete
                                                                  else [f"fields {data}"]))])
    if shown is not None:
        page, page_mac = read_page(file)
        # A v2 certificate is issued with its page code: one without (taken out) is refused, not
        # checked field by field only.
        if page_mac is not None or "title" in data:
            if not (isinstance(page_mac, str) and page is not None
                    and hmac.compare_digest(page_mac, page_code(key, typed, page))):
                return Verdict(False, [f"NOT GENUINE: {file}: the code is genuine but the page was edited, it is not "
                                       "the one issued (text added, hidden or restyled; or saved again by a browser "
                                       "or an editor): check the code itself with `techday grade verify CODE`"], data)
        # In the page's language (a Korean certificate's score line is Korean), or in English.
        renderings = [visible_fields(course, data, typed, lang) for lang in shown_languages(page_language(file))]
        wrong = [f"{k} shows {', '.join(map(repr, shown.get(k, []))) or 'nothing'}, the code certifies {v!r}"
                 for k, v in renderings[0].items() if all(shown.get(k) != [" ".join(r[k].split())] for r in renderings)]
        if wrong:
            return Verdict(False, [f"NOT GENUINE: {file}: the code is genuine but the page was edited: "
                                   + "; ".join(wrong)], data)
    lines = [f"GENUINE: {typed} certifies"]
    lines += [f"  {line}" for line in _describe(course, data, typed, entry)]
    if entry is not None and entry.get("status") == "withdrawn":
        return Verdict(False, lines + [f"WITHDRAWN on {printable(entry.get('withdrawn'))}: the latest results of this run no "
                                       "longer certify this (regraded); the trainee's current certificate, if "
                                       "any, has another code"], data)
    if file is not None and shown is None:
        lines.append("  (a PDF: compare these with what the PDF shows; its drawn text is not read)")
    if file is not None and entry is None:
        lines.append("  (not in this host's register: checked against the key alone)")
    return Verdict(True, lines, data)
