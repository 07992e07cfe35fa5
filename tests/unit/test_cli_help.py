"""`techday --help` and every command's `--help` say what each argument is: an admin walking the README
reads them before anything else."""

from __future__ import annotations

import argparse

from techday.cli.main import parser


def _missing_help(p: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                if not helps.get(name):
                    missing.append(f"{path} {name}: no one-line help in the list of commands")
                missing += _missing_help(child, f"{path} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)) and not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.metavar or action.dest}: no help")
    return missing


def test_every_argument_of_every_command_has_a_help_text():
    # Wrong answer caught: `techday build --help` listed a bare `LAB` (nothing said a number such as 02
    # is enough, or that none means every lab), and `doctor`'s and `bench`'s `--tier {auto,gpu,cpu}`
    # said nothing of what each choice does: eleven arguments in all.
    assert not _missing_help(parser(), "techday"), "\n".join(_missing_help(parser(), "techday"))


def test_the_help_check_sees_an_argument_without_help():
    p = argparse.ArgumentParser(prog="x")
    sub = p.add_subparsers()
    child = sub.add_parser("build", help="build it")
    child.add_argument("labs", nargs="*", metavar="LAB")
    assert _missing_help(p, "x") == ["x build LAB: no help"]


def _sub(p: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[name]


def test_bench_usage_shows_a_run_and_the_leaderboard_as_two_forms():
    # Wrong answer caught: `techday bench --help` ended its usage with `leaderboard ...`, as if every run
    # needed it (the README's `techday bench --quick` has none), and `bench leaderboard --help` repeated
    # the whole of bench's usage before its own.
    bench = _sub(parser(), "bench")
    usage = bench.format_usage()
    assert "techday bench [-h] [--quick]" in usage and "techday bench leaderboard [-h]" in usage, usage
    assert "--note TEXT] leaderboard" not in " ".join(usage.split()), usage
    board = _sub(bench, "leaderboard").format_usage()
    assert board.startswith("usage: techday bench leaderboard [-h]") and "--quick" not in board, board


def test_a_missing_subcommand_is_named_by_its_choices(capsys):
    # Wrong answer caught: `techday grade` alone said "the following arguments are required: grade_command",
    # a name from the code; `techday i18n` said "i18n_command".
    from techday.cli.main import main

    for argv, choices in ((["grade"], "{selftest,check,autograde,results,review,verify}"),
                          (["i18n"], "{report,stamp}"), ([], "{doctor,list,build,")):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 2
        err = capsys.readouterr().err
        assert f"required: {choices}" in err and "_command" not in err, err


def _dispatched(p: argparse.ArgumentParser, path: str) -> list[tuple[str, str | None]]:
    """Every command ``techday`` runs (a parser with a function of its own to call), with the one-line help its
    group's list gives it: walked from the parser itself, so a command added anywhere is in it."""
    found = [(path, None)] if p.get_default("fn") is not None else []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                found += [(cmd, helps.get(name) if cmd == f"{path} {name}" else h)
                          for cmd, h in _dispatched(child, f"{path} {name}")]
    return found


def _not_in_top_help(p: argparse.ArgumentParser) -> list[str]:
    """The dispatched commands `techday --help` does not list on a line of their own with their help."""
    import re

    out = p.format_help()
    missing = []
    for cmd, help_ in _dispatched(p, "techday"):
        if not help_:
            missing.append(f"{cmd}: no one-line help in its group's list")
        elif not re.search(rf"^[ \t]+{re.escape(cmd)}[ \t]+{re.escape(help_.split()[0])}", out, re.M):
            missing.append(f"{cmd}: not listed in `techday --help`")
    return missing


def test_techday_help_lists_every_command_it_dispatches(capsys):
    """Wrong answer caught: `techday --help` listed the groups only, and said of `hub` "check the server, make
    accounts": `techday hub release` (lift a sign-in lock on the day), `hub lab-language` and `hub sweep` were
    nowhere in it, nor any `grade`, `i18n`, `bench leaderboard` or `locks` subcommand. Now the list of commands
    in `techday --help` is made from the parser, and this walks the parser on its own to find what it runs."""
    from techday.cli.main import main

    p = parser()
    assert len(_dispatched(p, "techday")) >= 25, _dispatched(p, "techday")
    assert not _not_in_top_help(p), "\n".join(_not_in_top_help(p))
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for cmd in ("techday hub release", "techday hub lab-language", "techday hub sweep", "techday grade review"):
        assert f"  {cmd} " in out, out


def test_the_top_help_check_sees_a_command_added_without_help(monkeypatch):
    """The check above fails for a command added to a group without a line of help (argparse lists it
    with nothing beside it)."""
    from techday.cli import main as cli

    class NewGroup:
        @staticmethod
        def register(sub):
            p = sub.add_parser("newcmd")
            p.set_defaults(fn=lambda args: 0)

    monkeypatch.setattr(cli, "GROUPS", (*cli.GROUPS, NewGroup))
    assert _not_in_top_help(cli.parser()) == ["techday newcmd: no one-line help in its group's list"]
