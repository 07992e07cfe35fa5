"""Files written whole or not at all (techday/atomicfile.py): the helper itself, and the writers of
files a person would lose work in, stopped half-way by a full disk.

A full disk is made with RLIMIT_FSIZE in a child process: a write past the limit fails with EFBIG
(SIGXFSZ ignored), as one past the free space fails with ENOSPC, after part of the text is written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import tomllib

import pytest

from techday import atomicfile
from tests.conftest import ROOT

LAB = "01-numba-first-steps"


def _full_disk(code: str, limit: int, cwd) -> subprocess.CompletedProcess:
    """Run ``code`` in a child that cannot write a file past ``limit`` bytes."""
    prelude = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    # Wrong answer caught: Path.write_text truncates first, so an error (or Ctrl-C) after the first
    # bytes left a half-written file where the old whole one was.
    path = tmp_path / "gradebook.json"
    path.write_text('{"old": true}\n', encoding="utf-8")
    for stop in (OSError(28, "No space left on device"), KeyboardInterrupt()):
        with pytest.raises(type(stop)):
            with atomicfile.replacing(path) as f:
                f.write('{"new": ')
                raise stop
        assert path.read_text(encoding="utf-8") == '{"old": true}\n'
        assert _leftovers(tmp_path) == []
    atomicfile.write_text(path, "새 내용\n")
    assert path.read_text(encoding="utf-8") == "새 내용\n" and _leftovers(tmp_path) == []


def test_the_new_file_keeps_the_old_ones_permissions(tmp_path):
    # Wrong answer caught: mkstemp's 0600 replacing a committed 0644 file (a lock file, a translation)
    # that the image build or another user then cannot read.
    path = tmp_path / "cuda13.txt"
    path.write_text("old\n", encoding="utf-8")
    path.chmod(0o644)
    atomicfile.write_text(path, "new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    fresh = tmp_path / "fresh.txt"
    atomicfile.write_text(fresh, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    secret = tmp_path / "slips.csv"
    atomicfile.write_text(secret, "password\n", perms=0o600)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_a_link_is_written_through_and_kept(tmp_path):
    # Wrong answer caught: os.replace on the link itself turned a linked results file into a copy,
    # leaving the file the link pointed at with the old contents.
    real = tmp_path / "shared" / "results.json"
    real.parent.mkdir()
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "results.json"
    link.symlink_to(real)
    atomicfile.write_text(link, "new")
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "new"


def test_a_full_disk_while_stamping_a_translation_loses_nothing(tmp_path):
    # Wrong answer caught: `techday i18n stamp` rewrote labs/<lab>/<lab>.ko.toml in place; a full disk
    # part-way left the translator's file cut at the limit (the rest of the Korean text gone).
    catalogue = tmp_path / f"{LAB}.ko.toml"
    original = (ROOT / "labs" / LAB / f"{LAB}.ko.toml").read_text(encoding="utf-8")
    catalogue.write_text(original, encoding="utf-8")
    data = tomllib.loads(original)
    hashes = {(table, key): "0" * 16 for table in ("cells", "messages") for key in data.get(table, {})}
    out = _full_disk(f"""
        from pathlib import Path
        from techday.i18n import _restamp
        _restamp(Path({str(catalogue)!r}), {hashes!r})
    """, limit=len(original.encode()) // 3, cwd=tmp_path)
    assert out.returncode != 0, "the write should have failed at the file size limit"
    assert "File too large" in out.stderr, out.stderr[-2000:]
    assert catalogue.read_text(encoding="utf-8") == original
    assert _leftovers(tmp_path) == []


def test_a_full_disk_while_rewriting_a_notebook_keeps_the_committed_one(tmp_path):
    # Wrong answer caught: `techday fmt --fix` (and the build) wrote notebooks with Path.write_text; a
    # full disk half-way left a committed notebook that is not JSON.
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("가" * 5000, id="c0")])
    path = tmp_path / "lab.ipynb"
    path.write_text("{}\n", encoding="utf-8")
    out = _full_disk(f"""
        import nbformat
        from pathlib import Path
        from techday.course.labsrc import write_notebook
        write_notebook(nbformat.reads({nbformat.writes(nb)!r}, as_version=4), Path("lab.ipynb"))
    """, limit=4096, cwd=tmp_path)
    assert out.returncode != 0 and "File too large" in out.stderr, out.stderr[-2000:]
    assert path.read_text(encoding="utf-8") == "{}\n"
    assert _leftovers(tmp_path) == []
