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
