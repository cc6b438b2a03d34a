"""What a bulk operation reports, and how (Swift's ``get_heartbeat_response_body``).

A bulk request always answers ``200 OK``: its real outcome is in the body, as JSON, XML or
plain text by the ``Accept`` header (``text/plain`` without one)::

    {"Response Status": "201 Created", "Response Body": "", "Number Files Created": 10,
     "Errors": []}

``Errors`` lists ``[quoted name, status line]`` for each path that failed. While the work
goes on, the body may start with whitespace (and, for XML, the XML declaration) so that the
client's connection does not time out; see ``bulk.stream_result``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from pocketstack.objectstore.proxy.middleware.subrequests import status_line

ACCEPTABLE_FORMATS: Sequence[str] = ("text/plain", "application/json", "application/xml",
                                     "text/xml")
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


class BulkStop(Exception):
    """Ends a bulk operation early with this status (and text) as its reported outcome."""

    def __init__(self, status: int, body: str = "") -> None:
        super().__init__(body or str(status))
        self.status = status
        self.body = body


@dataclass
class BulkResult:
    """The outcome of one bulk request, built up as it runs."""

    root: str  # the XML document element: "extract" or "delete"
    status: str
    counts: dict[str, int]
    body: str = ""
    errors: list[list[str]] = field(default_factory=list)
    server_error: bool = False  # a sub-request failed with 5xx: report 502, not 400

    @classmethod
    def for_extract(cls) -> BulkResult:
        return cls("extract", status_line(201), {"Number Files Created": 0})

    @classmethod
    def for_delete(cls) -> BulkResult:
        return cls("delete", status_line(200), {"Number Deleted": 0, "Number Not Found": 0})

    def fail(self, name: str, status: int) -> None:
        """One failed path (already quoted) and the status it failed with."""
        if status // 100 == 5:
            self.server_error = True
        self.errors.append([name, status_line(status)])

    def stop(self, status: int, body: str = "") -> None:
        self.status, self.body = status_line(status), body

    def finish(self, *, empty: bool, empty_body: str) -> None:
        """The final status once every path was tried: 400 (or 502 after a server error)
        when some failed, 400 with ``empty_body`` when nothing was done at all."""
        if self.errors:
            self.status = status_line(502 if self.server_error else 400)
        elif empty:
            self.stop(400, empty_body)

    def fields(self) -> dict[str, object]:
        return {"Response Status": self.status, "Response Body": self.body, **self.counts}


def render(result: BulkResult, media_type: str | None) -> bytes:
    """The result in ``media_type`` (JSON, XML without its declaration, else plain)."""
    fields = result.fields()
    if media_type == "application/json":
        return json.dumps({**fields, "Errors": result.errors}).encode("ascii")
    if media_type is not None and media_type.endswith("/xml"):
        # imported here: xml.sax.saxutils brings urllib.request, 3 ms of every start, for
        # the rare client that asks for XML
        from xml.sax.saxutils import escape

        out = [f"<{result.root}>\n"]
        for key in sorted(fields):
            tag = key.replace(" ", "_").lower()
            out.append(f"<{tag}>{escape(str(fields[key]))}</{tag}>\n")
        out.append("<errors>\n")
        out.extend(f"<object><name>{escape(name)}</name><status>{escape(status)}</status>"
                   "</object>\n" for name, status in result.errors)
        out.append(f"</errors>\n</{result.root}>\n")
        return "".join(out).encode("utf-8")
    lines = [f"{key}: {fields[key]}\n" for key in sorted(fields)]
    lines.append("Errors:\n")
    lines.extend(f"{name}, {status}\n" for name, status in result.errors)
    return "".join(lines).encode("utf-8")
