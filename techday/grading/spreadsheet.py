"""CSV files that people open in a spreadsheet: no cell a spreadsheet would run as a formula.

Trainee ids and names reach these files from trainees (an ``--import`` file name is the trainee's
choice; a roster may be a sign-up form they filled in): ``=HYPERLINK(...)``, ``+cmd|...``, ``-2+3``,
``@SUM(...)`` are formulas to Excel, LibreOffice and Google Sheets, also after a leading space or tab.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from pathlib import Path

# The first characters a spreadsheet never reads as the start of a formula (Excel, LibreOffice, Google
# Sheets read "=", "+", "-", "@", a tab or a CR as one, also after a space); any other first character gets
# a "'" before it in passfail.csv. An allow-list: ids and names come from trainees (an --import file
# name, a roster filled in by the trainees themselves).
SAFE_FIRST = "._~/()[]'\"#"


def spreadsheet_cell(value):
    """``value`` as a cell of a CSV that people open in a spreadsheet: text starting with anything but a
    letter, a digit or one of :data:`SAFE_FIRST` gets a leading ``'`` (shown, never
    run as a formula); numbers and empty text unchanged."""
    if not isinstance(value, str) or not value:
        return value
    first = value[0]
    if unicodedata.category(first)[0] in "LN" and unicodedata.normalize("NFKC", first).isalnum() \
            or first in SAFE_FIRST:
        return value
    return "'" + value


# A number as nbgrader's export writes one (9.5, -1.5, 1e3): digits, never a word. Python's float() also
# reads "-inf", "+nan", "-Infinity", " 1" and "1_0", which a spreadsheet takes as formulas or text:
# an --import id "-inf" went into grades.csv as it was, and Excel evaluated it (#NAME?).
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?")


def _number(text: str) -> bool:
    return NUMBER.fullmatch(text) is not None


def safe_csv(path: Path) -> None:
    """Rewrite a CSV written by another program (``nbgrader export``'s ``grades.csv``) with
    :func:`spreadsheet_cell` applied to every cell that is not a number; replaced atomically."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    fixed = [[cell if _number(cell) else spreadsheet_cell(cell) for cell in row] for row in rows]
    if fixed == rows:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(fixed)
    os.replace(tmp, path)
