"""``GET /v2/images`` query parameters, read as Glance reads them (pure).

    ?name=in:"glass, darkly",share me   several values (name, status, id, formats)
    ?size_min=1048576&size_max=4194304  size range (bytes)
    ?created_at=gt:2016-04-18T21:38:54Z time comparison (gt, gte, eq, neq, lt, lte)
    ?tag=ready&tag=approved             every tag (AND)
    ?sort=name:asc,status:desc          or ?sort_key=name&sort_dir=asc (not both)
    ?limit=10&marker=<id>               paging (the page's last id is the next marker)
    ?visibility=community|public|private|shared|all   ?member_status=accepted|...|all
    ?os_hidden=true ?protected=false    booleans
    ?hw_arch=x86_64                     any other name: an additional property, exact match

Every mistake is Glance's 400 with Glance's wording.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pocketstack.image.exceptions import BadRequest
from pocketstack.image.service.schema import MEMBER_STATUSES, VISIBILITIES

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at")
IN_FIELDS = ("name", "status", "id", "container_format", "disk_format")
EXACT_FIELDS = ("owner", "checksum", "os_hash_value", "os_hash_algo", "min_ram", "min_disk",
                "virtual_size")
TIME_FIELDS = ("created_at", "updated_at")
TIME_OPS = ("gt", "gte", "eq", "neq", "lt", "lte")
_PAGING = ("limit", "marker", "sort", "sort_key", "sort_dir", "member_status", "tag",
           "visibility", "os_hidden", "protected", "size_min", "size_max")


@dataclass
class ListQuery:
    limit: int
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    member_status: str = "accepted"
    visibility: str | None = None
    os_hidden: bool = False
    protected: bool | None = None
    size_min: int | None = None
    size_max: int | None = None
    tags: list[str] = field(default_factory=list)
    in_filters: dict[str, list[str]] = field(default_factory=dict)
    exact: dict[str, Any] = field(default_factory=dict)
    times: list[tuple[str, str, datetime]] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


def parse(pairs: Iterable[tuple[str, str]], *, default_limit: int, max_limit: int
          ) -> ListQuery:
    params: dict[str, list[str]] = {}
    for key, value in pairs:
        params.setdefault(key, []).append(value)
    if "changes-since" in params:
        raise BadRequest('The "changes-since" filter is no longer available on v2.')
    query = ListQuery(limit=min(_limit(params, default_limit), max_limit))
    query.marker = _last(params, "marker")
    query.sort = _sorting(params)
    query.member_status = _choice(params, "member_status", [*MEMBER_STATUSES, "all"],
                                  "Invalid status: %s") or "accepted"
    query.visibility = _choice(params, "visibility", [*VISIBILITIES, "all"],
                               "Invalid visibility value: %s")
    query.os_hidden = _boolean(params, "os_hidden") or False
    query.protected = _boolean(params, "protected")
    query.size_min = _size(params, "size_min")
    query.size_max = _size(params, "size_max")
    query.tags = [tag.strip() for tag in params.get("tag", [])]
    _filters(query, params)
    return query


def _last(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def _limit(params: dict[str, list[str]], default: int) -> int:
    raw = _last(params, "limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise BadRequest("limit param must be positive")
    return limit


def _sorting(params: dict[str, list[str]]) -> list[tuple[str, str]]:
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise BadRequest("Old and new sorting syntax cannot be combined")
        pairs = []
        for item in params["sort"][-1].strip().split(","):
            key, _, direction = item.partition(":")
            pairs.append((_sort_key(key.strip()), _sort_dir(direction.strip() or "desc")))
        return pairs
    keys = [_sort_key(k.strip()) for k in params.get("sort_key", [])] or ["created_at"]
    dirs = [_sort_dir(d.strip()) for d in params.get("sort_dir", [])] or ["desc"]
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise BadRequest("Number of sort dirs does not match the number of sort keys")
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    return list(zip(keys, dirs, strict=False))


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: "
                         f"{', '.join(SORT_KEYS)}.")
    return key


def _sort_dir(direction: str) -> str:
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {direction}")
    return direction


def _choice(params: dict[str, list[str]], key: str, allowed: list[str], message: str
            ) -> str | None:
    value = _last(params, key)
    if value is not None and value not in allowed:
        raise BadRequest(message % value)
    return value


def _boolean(params: dict[str, list[str]], key: str) -> bool | None:
    value = _last(params, key)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"Invalid value '{value}' for '{key}' filter. Valid values are "
                         "'true' or 'false'.")
    return value.lower() == "true"


def _size(params: dict[str, list[str]], key: str) -> int | None:
    value = _last(params, key)
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        raise BadRequest("Unable to filter on a range with a nonsensical value.") from None
    if size < 0:
        raise BadRequest("Unable to filter on a range with a nonsensical value.")
    return size


def _filters(query: ListQuery, params: dict[str, list[str]]) -> None:
    for key, values in params.items():
        if key in _PAGING:
            continue
        value = values[-1]
        if key in IN_FIELDS:
            query.in_filters[key] = split_in(value) if value.startswith("in:") else [value]
        elif key in TIME_FIELDS:
            query.times.append((key, *_time(value)))
        elif key in EXACT_FIELDS:
            query.exact[key] = _exact(key, value)
        else:
            query.properties[key] = value


def _exact(key: str, value: str) -> Any:
    if key in ("min_ram", "min_disk", "virtual_size"):
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"Invalid value for {key}: {value}") from None
    return value


def _time(value: str) -> tuple[str, datetime]:
    op, sep, rest = value.partition(":")
    if not sep or op not in TIME_OPS:
        if sep and op.isalpha():
            raise BadRequest("Unable to filter using the specified operator.")
        op, rest = "eq", value
    try:
        when = datetime.fromisoformat(rest.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Unable to filter using the provided date: {rest}") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return op, when


def split_in(value: str) -> list[str]:
    """The values of ``in:a,"b, c",d``: commas split, double quotes protect."""
    text = value[3:]
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise BadRequest("Invalid filter value: the quotes are not closed.")
    items.append("".join(current))
    return items
