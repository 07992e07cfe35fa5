"""Trainees' notebooks shown to instructors as HTML without running anything a trainee wrote.

The formgrader renders each autograded notebook as HTML (nbconvert's ``HTMLExporter``, nbgrader's
``formgrade`` template) on the hub's own origin, in the instructor's browser: a markdown answer
``<img src=x onerror=...>`` or an output ``display(HTML("<script>..."))`` would run there with the
instructor's session (and could set any trainee's grades
through the formgrader's API). nbconvert's own ``sanitize_html`` does not reach nbgrader's
``formgrade`` template (it renders markdown cells itself) and escapes every paragraph, heading and
table of an answer. :class:`SafeHTML` (set in ``grading/nbgrader_config.py`` and in every generated course root's
config: the formgrader and the feedback pages) cleans instead, by allow-lists:

- markdown cells: rendered, then only the tags and attributes of :data:`TAGS` and :data:`ATTRIBUTES` kept:
  links out (``http``, ``https``, ``mailto``) or within the page, no ``id`` (a heading's id took the
  place of a score box's in the formgrader), images embedded as PNG,
  JPEG or GIF data, never a URL the instructor's browser would fetch by itself; anything else is shown
  as text;
- outputs: only the types of :data:`OUTPUT_TYPES`; ``text/html`` and ``text/markdown`` cleaned as above;
  JavaScript, SVG, widgets and any other type dropped (a line says so);
- raw cells: never rendered as HTML (nbgrader's templates do not today; a later one might);
  the notebook's widget state is left out;
- metadata, by allow-lists too (:data:`IMAGE_SIZE`, :func:`_cell_metadata`): nbconvert's templates write an
  image output's ``width`` and ``height`` into an unquoted attribute (``width=1 onerror=...`` ran in the
  formgrader) and its ``filenames`` as the image's URL (``/hub/logout``, fetched with the instructor's
  session); a cell's and an output's metadata come from the trainee's file or code. An output keeps
  only a width and height that are whole numbers; a cell keeps its ``nbgrader`` metadata (the
  formgrader's score boxes) where its ``grade_id`` is one nbgrader could have made, and its tags.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor

from ..i18n import PackageCatalogue

TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody",
        "td", "th", "thead", "tr", "u", "ul"}
LINKS = ("http://", "https://", "mailto:", "#")
IMAGES = ("data:image/png;", "data:image/jpeg;", "data:image/gif;")


def _link(tag: str, name: str, value: str) -> bool:
    """A link goes out of the hub (http, https, mailto) or to a heading of the page: never a relative URL,
    which would be a request on the hub's own origin (``/hub/logout``) with the instructor's session."""
    return name == "title" or name == "href" and value.strip().lower().startswith(LINKS)


def _image(tag: str, name: str, value: str) -> bool:
    """An image is embedded (a PNG, JPEG or GIF data URI): a URL would make the instructor's browser send a
    request (to the hub's own origin, or to say who read the answer and when)."""
    return name in ("alt", "title", "width", "height") or name == "src" and value.strip().lower().startswith(IMAGES)


# No ``id``: the formgrader finds each score box by the cell's grade id (``$("#" + grade_id)``, the first
# element with it), and a trainee's heading ``# double_tests`` above it took the box's place: the
# instructor's score went nowhere, or to another cell's grade.
ATTRIBUTES = {"a": _link, "img": _image, "td": ["align", "colspan", "rowspan"], "th": ["align", "colspan", "rowspan"],
              "ol": ["start"]}
PROTOCOLS = {"http", "https", "mailto", "data"}  # data: only where _image allows it
IMAGE_SIZE = ("width", "height")  # all an output's metadata may say, per image type, as whole numbers
GRADE_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # what nbgrader's own grade ids are made of
OUTPUT_TYPES = {"text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg", "image/gif"}


def clean(html: str) -> str:
    """``html`` with only the allowed tags, attributes and link protocols; anything else as text."""
    import bleach

    return bleach.clean(html, tags=TAGS, attributes=ATTRIBUTES, protocols=PROTOCOLS, strip=False,
                        strip_comments=True)


def _size(value) -> int | None:
    """A width or height as a whole number of pixels (``640``, ``"640"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 100_000 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        return int(value)
    return None


def _output_metadata(meta) -> dict:
    """An output's metadata by allow-list: per image type, a width and a height that are whole numbers."""
    kept = {}
    for mime in ("image/png", "image/jpeg", "image/gif"):
        for where in (meta.get(mime) if isinstance(meta, dict) else None, meta):
            if not isinstance(where, dict):
                continue
            for name in IMAGE_SIZE:
                size = _size(where.get(name))
                if size is not None:
                    kept.setdefault(mime, {}).setdefault(name, size)
    return kept


def _cell_metadata(meta) -> dict:
    """A cell's metadata by allow-list: nbgrader's (a ``grade_id`` of nbgrader's own characters, or none)
    and tags that are text."""
    kept = {}
    grading = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = grading.get("grade_id") if isinstance(grading, dict) else None
    if isinstance(grading, dict) and (gid is None or isinstance(gid, str) and GRADE_ID.fullmatch(gid)):
        kept["nbgrader"] = grading
    tags = meta.get("tags") if isinstance(meta, dict) else None
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        kept["tags"] = tags
    return kept


def _one_block(html: str) -> str:
    """One line: markdown passes an HTML block through until a blank line, and would render what
    follows again (inside <pre>, &#10; is the same line break)."""
    return "<div>" + html.replace("\r", "").replace("\n", "&#10;") + "</div>"


class SafeHTML(Preprocessor):
    """Markdown cells, outputs and raw cells as the module docstring says."""

    def preprocess(self, nb, resources):
        from .feedback import feedback_language

        nb.metadata.pop("widgets", None)
        self._words = PackageCatalogue(feedback_language(nb))  # the page's language (a trainee reads feedback)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        from nbconvert.filters.markdown import markdown2html
        from nbformat import from_dict

        cell.metadata = from_dict(_cell_metadata(cell.get("metadata", {})))
        if cell.cell_type == "markdown" and cell.source:
            cell.source = _one_block(clean(markdown2html(cell.source)))
        elif cell.cell_type == "raw":
            for key in ("format", "raw_mimetype"):
                cell.metadata.pop(key, None)
        elif cell.cell_type == "code":
            for out in cell.get("outputs", []):
                if "metadata" in out:
                    out["metadata"] = from_dict(_output_metadata(out["metadata"]))
                data = out.get("data")
                if not isinstance(data, dict):
                    continue
                dropped = sorted(k for k in data if k not in OUTPUT_TYPES)
                for key in dropped:
                    del data[key]
                if "text/html" in data:
                    html = data["text/html"]
                    data["text/html"] = clean("".join(html) if isinstance(html, list) else str(html))
                if "text/markdown" in data:
                    md = data.pop("text/markdown")
                    data.setdefault("text/html", clean(markdown2html("".join(md) if isinstance(md, list) else str(md))))
                if dropped and not data:
                    words = getattr(self, "_words", None) or PackageCatalogue("en")  # a cell without its notebook
                    data["text/plain"] = words.msg("techday.safehtml_not_shown",
                                                   "[output of type {types} not shown here]", types=", ".join(dropped))
        return cell, resources
