"""A lab named by the start of its name (`02` for 02-kernels-and-threads) is that lab in every command
that takes labs, as README's `techday lab 01 02` shows."""

from __future__ import annotations

from techday.cli.main import main


def test_kernels_takes_a_lab_by_the_start_of_its_name_as_every_command_does(monkeypatch, tmp_path):
    # Wrong answer caught: `techday kernels 02`, and the kernels step of `techday validate 02`, looked for
    # labs/02/02.py ("FAILED labs/02/02.py: lab source not found") where build, run and selftest took 02
    # as 02-kernels-and-threads.
    from techday.validate import kernels

    asked = []

    def record(root, out, jobs, labs, families, report):
        asked.append(labs)
        raise KeyboardInterrupt

    monkeypatch.setattr(kernels, "run", record)
    assert main(["kernels", "02", "--out", str(tmp_path / "kernels")]) == 130
    assert asked == [["02-kernels-and-threads"]]
