"""What keeps one account from another's work beyond the exchange's modes: the uid each name keeps,
the privileges a server can never gain, and what a server's own token may do at the hub.

Each test names the wrong behaviour it catches; each failed on the code before its fix.
"""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

from techday.hub.config import (
    UID_FIRST,
    apply_identity,
    make_accounts,
    read_accounts,
    roles,
    write_accounts,
)


def _uids(folder) -> dict[str, int]:
    return {name: a.uid for name, a in read_accounts(folder / "users.csv").items()}


# ------------------------------------------------------------------ a uid is one person's for good


def test_a_reissued_roster_never_hands_a_uid_to_another_name(tmp_path):
    """Caught: ``techday hub users --force`` numbered uids by row order, so adding an instructor (rows
    come staff first) moved every trainee one uid along: trainee-002 got trainee-001's old uid, and with
    it ownership of trainee-001's submissions still in ``inbound`` (read, change, remove them) and of
    the files in trainee-001's home. The exchange's walls are uids: a uid must never change hands."""
    write_accounts(make_accounts(3, "trainee", ["kim"], []), tmp_path)
    first = _uids(tmp_path)
    write_accounts(make_accounts(3, "trainee", ["kim", "lee"], []), tmp_path, force=True)
    second = _uids(tmp_path)
    for name, uid in first.items():
        assert second[name] == uid, f"{name} kept its uid ({uid} -> {second[name]})"
    assert second["lee"] not in first.values(), "a new name gets a uid nobody had"


def test_a_uid_stays_retired_when_its_name_leaves_the_roster(tmp_path):
    """Caught: a name dropped from the roster freed its uid for the next new name, who then owned the
    dropped trainee's entries in ``inbound``."""
    write_accounts(make_accounts(3, "trainee", [], []), tmp_path)
    first = _uids(tmp_path)
    write_accounts(make_accounts(2, "trainee", [], []), tmp_path, force=True)      # trainee-003 leaves
    write_accounts(make_accounts(2, "trainee", ["new"], []), tmp_path, force=True)  # someone new comes
    third = _uids(tmp_path)
    assert third["new"] not in first.values(), f"trainee-003's uid {first['trainee-003']} went to 'new'"
    assert third["trainee-001"] == first["trainee-001"]


def test_the_first_roster_still_numbers_from_uid_first(tmp_path):
    write_accounts(make_accounts(2, "trainee", ["kim"], []), tmp_path)
    assert _uids(tmp_path) == {"kim": UID_FIRST, "trainee-001": UID_FIRST + 1, "trainee-002": UID_FIRST + 2}
    with open(tmp_path / "users.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == ["username", "role", "password_hash", "uid"], "the hub's file is unchanged"
