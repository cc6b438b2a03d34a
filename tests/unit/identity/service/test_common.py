"""Resource options: Keystone's key-by-key merge and the ``immutable`` guard."""

from __future__ import annotations

import pytest

from pocketstack.identity.exceptions import Forbidden, ValidationError
from pocketstack.identity.service.common import check_mutable, merged_options


def test_merged_options() -> None:
    assert merged_options({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}
    assert merged_options({"a": 1, "b": 2}, {"a": None}) == {"b": 2}
    assert merged_options(None, {}) == {}
    with pytest.raises(ValidationError):
        merged_options({}, ["immutable"])


def test_check_mutable() -> None:
    check_mutable("project", "p", {}, {"name": "x"})
    check_mutable("project", "p", {"immutable": False})
    locked = {"immutable": True}
    with pytest.raises(Forbidden, match="Unable to delete immutable project"):
        check_mutable("project", "p", locked)
    with pytest.raises(Forbidden, match="Unable to update"):
        check_mutable("project", "p", locked, {"name": "x"})
    with pytest.raises(Forbidden):  # unlocking must come alone
        check_mutable("role", "r", locked, {"name": "x", "options": {"immutable": False}})
    with pytest.raises(Forbidden):
        check_mutable("role", "r", locked, {"options": {"other": 1}})
    check_mutable("role", "r", locked, {"options": {"immutable": False}})
    check_mutable("domain", "d", locked, {"options": {"immutable": None}})
