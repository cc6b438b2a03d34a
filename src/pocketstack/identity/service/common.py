"""Small helpers every identity service module uses: ids, clocks, time formats."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from pocketstack.identity.exceptions import Conflict, Forbidden, ValidationError


class NeedsDatabase(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a ``cached_only`` call when its answer needs a database read.

    The API calls such methods on the event loop first (everything they need is in memory
    most of the time) and repeats the call in a thread when this is raised. A cached-only
    call has no side effect before it raises, so the repeat sees the same state.
    """


def new_id() -> str:
    """A Keystone-style id: uuid4 as 32 hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Naive UTC now (the database stores naive UTC timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


def isotime(value: datetime | None, *, subsecond: bool = True) -> str | None:
    """Keystone's wire form of a time: ``2015-11-09T01:42:57.000000Z``."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    if value.year < 1000:  # strftime does not pad such years: keep its form
        value = value.replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if subsecond else "%Y-%m-%dT%H:%M:%SZ")
    day = f"{value.year}-{value.month:02d}-{value.day:02d}"
    clock = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if subsecond:
        return f"{day}T{clock}.{value.microsecond:06d}Z"
    return f"{day}T{clock}Z"


def parse_isotime(text: str) -> datetime:
    """Parse an ISO 8601 time (``Z`` or an offset allowed) into naive UTC; ValueError if bad."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@contextlib.contextmanager
def conflict_guard(kind: str, details: str) -> Iterator[None]:
    """Turn a unique-constraint violation inside the block into Keystone's 409."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(type=kind, details=details) from exc


def merged_options(current: Mapping[str, Any] | None, update: Any) -> dict[str, Any]:
    """Keystone's resource options update: the given options replace the current ones
    key by key, and a ``None`` value removes an option."""
    if not isinstance(update, Mapping):
        raise ValidationError("Invalid input for field 'options': expected an object.")
    merged = {**(current or {}), **update}
    return {k: v for k, v in merged.items() if v is not None}


def check_mutable(kind: str, ident: str, options: Mapping[str, Any] | None,
                  fields: Mapping[str, Any] | None = None) -> None:
    """Keystone's ``immutable`` option: an immutable domain, project or role can be neither
    deleted (``fields`` None) nor changed, except by the update that clears the flag."""
    if not (options or {}).get("immutable"):
        return
    if fields is not None:
        new = fields.get("options")
        unlocking = isinstance(new, Mapping) and new.get("immutable") in (False, None) \
            and "immutable" in new
        if unlocking and set(fields) <= {"options"}:
            return
    verb = "delete" if fields is None else "update"
    raise Forbidden(f"Unable to {verb} immutable {kind} resource: `{ident}`. Set resource "
                    "option \"immutable\" to false first.")
