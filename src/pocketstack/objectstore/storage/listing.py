"""Swift's listing semantics (GET account / GET container), over any sorted name source.

`list_entries` turns a `ListingQuery` into a page of rows and `Subdir` entries by asking a
``fetch(lower, upper, reverse, limit)`` callback for rows in name order between two bounds.
The brokers implement ``fetch`` with one indexed SQL query; tests can use a sorted list.

Names compare in UTF-8 byte order, which for valid Unicode strings is also code point
order (Python's ``str`` order) and SQLite's BINARY collation on TEXT.

Semantics, as Swift's container and account servers:
- ``marker`` and ``end_marker`` are exclusive; ``prefix`` restricts to names starting
  with it. With ``reverse`` the names come in descending order, starting below ``marker``
  and stopping above ``end_marker``.
- With a ``delimiter``, a name holding the delimiter after the prefix is rolled up into a
  `Subdir` of ``prefix + ... + delimiter`` (once per page); a Subdir equal to the
  exclusive lower marker is not repeated, so paging by the last entry works.
- ``path`` (a pseudo-directory) means prefix ``path/`` and delimiter ``/``, but deeper
  names are left out instead of rolled up, and the name equal to ``path/`` itself too.
- ``limit`` caps the entries returned (rows and Subdirs together).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from pocketstack.objectstore.storage.types import ListingQuery, Subdir

Bound = tuple[str, bool] | None
"""A name bound: (name, inclusive), or None for unbounded."""


class Named(Protocol):
    @property
    def name(self) -> str: ...


RowT = TypeVar("RowT", bound=Named)
Fetch = Callable[[Bound, Bound, bool, int], Sequence[RowT]]
"""fetch(lower, upper, reverse, limit) -> at most ``limit`` rows within the bounds, sorted."""


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    None when there is none (the prefix is all U+10FFFF). Surrogates are skipped, as they
    cannot occur in UTF-8 names.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def _max_lower(a: Bound, b: Bound) -> Bound:
    if a is None or b is None:
        return a or b
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    return (a[0], a[1] and b[1])


def _min_upper(a: Bound, b: Bound) -> Bound:
    if a is None or b is None:
        return a or b
    if a[0] != b[0]:
        return a if a[0] < b[0] else b
    return (a[0], a[1] and b[1])


def bounds_sql(lower: Bound, upper: Bound, column: str = "name") -> tuple[list[str], list[str]]:
    """SQL conditions and parameters for two bounds."""
    clauses: list[str] = []
    params: list[str] = []
    if lower is not None:
        clauses.append(f"{column} {'>=' if lower[1] else '>'} ?")
        params.append(lower[0])
    if upper is not None:
        clauses.append(f"{column} {'<=' if upper[1] else '<'} ?")
        params.append(upper[0])
    return clauses, params


def initial_bounds(query: ListingQuery, prefix: str) -> tuple[Bound, Bound, str]:
    """(lower, upper, lower_marker) in ascending terms, whatever the direction."""
    lower_marker, upper_marker = query.marker, query.end_marker
    if query.reverse:
        lower_marker, upper_marker = upper_marker, lower_marker
    lower = _max_lower((lower_marker, False) if lower_marker else None, (prefix, True))
    prefix_end = successor(prefix) if prefix else None
    upper = _min_upper(
        (upper_marker, False) if upper_marker else None,
        (prefix_end, False) if prefix_end is not None else None,
    )
    if lower == ("", True):
        lower = None
    return lower, upper, lower_marker


def list_entries(fetch: Fetch[RowT], query: ListingQuery) -> list[RowT | Subdir]:
    """One page of a listing (see the module docstring)."""
    if query.limit < 0:
        raise ValueError("limit must not be negative")
    prefix, delimiter, path = query.prefix or "", query.delimiter, query.path
    if path is not None:
        prefix = path = path.rstrip("/") + "/" if path else ""
        delimiter = "/"
    lower, upper, lower_marker = initial_bounds(query, prefix)
    if not delimiter:
        return list(fetch(lower, upper, query.reverse, query.limit)) if query.limit else []
    results: list[RowT | Subdir] = []
    while len(results) < query.limit:
        wanted = query.limit - len(results)
        rows = fetch(lower, upper, query.reverse, wanted)
        for row in rows:
            name = row.name
            lower, upper = _past(name, lower, upper, query.reverse)
            end = name.find(delimiter, len(prefix))
            if end < 0 or (path is not None and len(name) == end + len(delimiter)):
                if path is None or name != path:
                    results.append(row)
                continue
            subdir = name[: end + len(delimiter)]
            if path is None and subdir != lower_marker:
                results.append(Subdir(subdir))
            # in path mode the name equal to the subdir is a listed object: keep it reachable
            skip = _past_subdir(subdir, lower, upper, query.reverse, keep_self=path is not None)
            if skip is None:
                return results
            lower, upper = skip
            break
        else:
            if len(rows) < wanted:
                return results
    return results


def _past(name: str, lower: Bound, upper: Bound, reverse: bool) -> tuple[Bound, Bound]:
    """Bounds that exclude ``name`` and everything before it in listing order."""
    return (lower, (name, False)) if reverse else ((name, False), upper)


def _past_subdir(
    subdir: str, lower: Bound, upper: Bound, reverse: bool, *, keep_self: bool
) -> tuple[Bound, Bound] | None:
    """Bounds that skip every name under ``subdir`` (but ``subdir`` itself if
    ``keep_self``); None if nothing can follow."""
    if reverse:
        return lower, (subdir, keep_self)
    after = successor(subdir)
    if after is None:
        return None
    return (after, True), upper
