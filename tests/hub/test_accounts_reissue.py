"""Adding a late trainee on the morning, as an admin would: ``techday hub users ... --force`` into the
folder the hub already reads. Nothing that is not asked for may be lost: every printed card keeps
working, and no account disappears without the admin saying so.

Each test names the wrong behaviour it catches.
"""

from __future__ import annotations

import csv

import pytest

from techday.cli.main import main
from techday.hub.config import check_password, make_accounts, read_accounts, write_accounts


def cards(folder) -> dict[str, str]:
    with open(folder / "passwords.csv", newline="", encoding="utf-8") as f:
        return {row["username"]: row["password"] for row in csv.DictReader(f)}


def signs_in(folder, name: str, password: str) -> bool:
    account = read_accounts(folder / "users.csv").get(name)
    return account is not None and check_password(password, account.password_hash)


def test_adding_a_trainee_keeps_every_printed_card_working(tmp_path):
    """Caught: ``--force`` gave every account a new password. The admin who added trainee-301 at 10:00
    had 300 printed cards stop working: everyone who signed out, changed browser or whose cookie
    expired could not sign in again, and the old passwords were gone (passwords.csv overwritten)."""
    write_accounts(make_accounts(3, "trainee", ["kim"], []), tmp_path)
    printed = cards(tmp_path)
    write_accounts(make_accounts(4, "trainee", ["kim"], []), tmp_path, force=True)
    still = [name for name, password in printed.items() if signs_in(tmp_path, name, password)]
    assert still == list(printed), f"cards that stopped working: {sorted(set(printed) - set(still))}"
    now = cards(tmp_path)
    assert signs_in(tmp_path, "trainee-004", now["trainee-004"]), "the new trainee gets a card of their own"
    assert {k: now[k] for k in printed} == printed, "the cards file keeps the passwords it held"


def test_new_passwords_for_everyone_only_when_asked(tmp_path):
    """The old behaviour, when it is wanted (a stack of cards was lost): every password new."""
    write_accounts(make_accounts(2, "trainee", [], []), tmp_path)
    printed = cards(tmp_path)
    write_accounts(make_accounts(2, "trainee", [], []), tmp_path, force=True, new_passwords=True)
    assert not any(signs_in(tmp_path, name, password) for name, password in printed.items())
    assert all(signs_in(tmp_path, name, password) for name, password in cards(tmp_path).items())


def test_a_shorter_roster_removes_nobody_without_being_told(tmp_path):
    """Caught: ``--force`` with a roster that missed names (``--trainees 30`` typed for 300, an
    instructor left out of ``--instructors``) removed those accounts at once: they could not sign in
    or start a server, and collect no longer knew their uids, so their submissions were left out."""
    write_accounts(make_accounts(3, "trainee", ["kim"], []), tmp_path)
    before = (tmp_path / "users.csv").read_bytes(), (tmp_path / "passwords.csv").read_bytes()
    with pytest.raises(ValueError, match=r"kim.*trainee-003|trainee-003.*kim") as refused:
        write_accounts(make_accounts(2, "trainee", [], []), tmp_path, force=True)
    assert "--remove" in str(refused.value)
    assert ((tmp_path / "users.csv").read_bytes(), (tmp_path / "passwords.csv").read_bytes()) == before, \
        "nothing written when the roster is refused"
    write_accounts(make_accounts(2, "trainee", [], []), tmp_path, force=True, remove=True)
    assert sorted(read_accounts(tmp_path / "users.csv")) == ["trainee-001", "trainee-002"]


def test_the_command_says_what_it_kept_and_what_is_new(tmp_path, capsys):
    out = str(tmp_path / "hub-users")
    assert main(["hub", "users", "--trainees", "2", "--instructors", "kim", "--out", out]) == 0
    capsys.readouterr()
    assert main(["hub", "users", "--trainees", "3", "--instructors", "kim", "--out", out, "--force"]) == 0
    said = capsys.readouterr().out
    assert "3 kept their passwords" in said and "trainee-003" in said, said
    assert main(["hub", "users", "--trainees", "1", "--out", out, "--force"]) == 1
    err = capsys.readouterr().err
    assert "--remove" in err and "trainee-002" in err and "kim" in err, err
    assert sorted(read_accounts(tmp_path / "hub-users" / "users.csv")) == ["kim", "trainee-001", "trainee-002",
                                                                           "trainee-003"]
