"""Trainees' markdown and outputs shown to instructors without running what they hold.

The formgrader renders each autograded notebook as HTML (nbconvert's ``HTMLExporter``, nbgrader's
``formgrade`` template) on the hub's own origin, in the instructor's browser: a trainee's answer cell
``<img src=x onerror=...>`` or an output ``display(HTML("<script>..."))`` would run there with the
instructor's session (and could set any trainee's grades through the formgrader's API). The course
root's config (``grading/nbgrader_config.py``) sets ``HTMLExporter.sanitize_html`` (nbconvert cleans
outputs: ``text/html``, ``text/markdown``, SVG; drops JavaScript) and adds :class:`SafeMarkdown`:
nbgrader's ``formgrade`` template renders markdown cells with ``markdown2html`` and never sanitizes
them, whatever ``sanitize_html`` says. The feedback pages, rendered the same way, get both too.
"""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor


class SafeMarkdown(Preprocessor):
    """Each markdown cell becomes its own rendering, cleaned by nbconvert's allow-list of tags and
    attributes (``clean_html``): what a template renders from it is that HTML, passed through."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and cell.source:
            from nbconvert.filters import clean_html
            from nbconvert.filters.markdown import markdown2html

            safe = clean_html(markdown2html(cell.source))
            # One line: markdown passes an HTML block through until a blank line, and would render
            # what follows a blank line again (inside <pre>, &#10; is the same line break).
            cell.source = "<div>" + safe.replace("\r", "").replace("\n", "&#10;") + "</div>"
        return cell, resources
