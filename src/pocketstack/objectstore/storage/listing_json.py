"""A page of a container listing rendered as Swift's JSON by SQLite, in one statement.

A JSON listing of 10 000 objects read row by row costs 10 000 steps of the cursor, each
of which gives the GIL up and must take it back from a busy event loop, then a Python
record per row (``proxy.listing.render_stored_listing``). For the common page (no
delimiter, every row plain) the database can write the very same bytes itself: one
``SELECT`` whose single step builds the whole text in C, with the GIL released throughout,
so the loop goes on serving meanwhile.

"The very same bytes" is what the Python renderer writes (``json.dumps`` with its ASCII
escapes, Swift's key order, ``last_modified`` from the stored timestamp). SQLite's
``json_quote`` escapes ASCII as Python does, except DEL; it leaves other characters as
UTF-8, where Python writes a ``\\u`` escape. So a page is rendered here only when its text is
ASCII without DEL, and when no row needs Python: a content type with parameters (its
``swift_bytes`` sets the size), or a value of an unexpected type. Otherwise `render_page`
answers None and the caller lists the rows (`list_entries`).

An SQLite without its JSON functions (built in since 3.38) renders nothing here. The rows
are concatenated in the order the subquery yields them (``ORDER BY name``, with a
``LIMIT``, which SQLite does not flatten into the aggregate). SQLite 3.44 and later are told
the order explicitly (``group_concat(... ORDER BY ...)``).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Final

from pocketstack.objectstore.storage.listing import Bound, bounds_sql

_ORDERED_AGGREGATES: Final = sqlite3.sqlite_version_info >= (3, 44, 0)


def _has_json_functions() -> bool:
    """JSON is built into SQLite since 3.38; older builds may lack it (then Python renders)."""
    try:
        with closing(sqlite3.connect(":memory:")) as probe:
            return bool(probe.execute("SELECT json_quote('a')").fetchone())
    except sqlite3.Error:
        return False


_RENDERS: Final = _has_json_functions()

# One object's record, as proxy.listing._object_json writes it.
_RECORD: Final = (
    """'{"bytes": ' || size || ', "hash": ' || json_quote(etag)"""
    """ || ', "name": ' || json_quote(name)"""
    """ || ', "content_type": ' || json_quote(content_type)"""
    """ || ', "last_modified": "'"""
    """ || replace(datetime(CAST(substr(created_at, 1, 10) AS INTEGER), 'unixepoch'), ' ', 'T')"""
    """ || '.' || substr(created_at, 12, 5) || '0"}'"""
)
# 1 for a row only Python renders right (see the module docstring); a NULL anywhere makes
# the record NULL, which the count catches. The timestamps are Timestamp.internal texts,
# as every write stores them (digits, a dot, digits).
_NEEDS_PYTHON: Final = "(instr(content_type, ';') > 0 OR typeof(size) != 'integer')"


def render_page(conn: sqlite3.Connection, lower: Bound, upper: Bound, reverse: bool,
                limit: int) -> bytes | None:
    """The live objects between the bounds, ``limit`` at most, in name order (descending
    if ``reverse``), as Swift's JSON listing; None when Python must render them."""
    if not _RENDERS:
        return None
    if limit <= 0:
        return b"[]"
    clauses, params = bounds_sql(lower, upper)
    where = " AND ".join(["deleted = 0", *clauses])
    order = "DESC" if reverse else "ASC"
    ordered = f" ORDER BY name {order}" if _ORDERED_AGGREGATES else ""
    row = conn.execute(
        f"SELECT group_concat(record, ', '{ordered}), max(needs_python),"
        f" count(*) - count(record) FROM ("
        f"SELECT name, {_RECORD} AS record, {_NEEDS_PYTHON} AS needs_python FROM object "
        f"WHERE {where} ORDER BY name {order} LIMIT ?)",
        (*params, limit),
    ).fetchone()
    text, needs_python, nulls = row
    if needs_python or nulls:
        return None
    text = text or ""
    if not text.isascii() or "\x7f" in text:
        return None
    return b"[" + text.encode("ascii") + b"]"
