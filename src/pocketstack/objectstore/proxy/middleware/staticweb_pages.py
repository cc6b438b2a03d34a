"""The pages static web sites show that are not objects: the HTML listing of a (pseudo)
directory and the "listings disabled" page, in Swift's markup (``staticweb.py``), so that
style sheets written for Swift's listings fit these too."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

DEFAULT_STYLE = ("  <style type=\"text/css\">\n"
                 "   h1 {font-size: 1em; font-weight: bold;}\n"
                 "   th {text-align: left; padding: 0px 1em 0px 1em;}\n"
                 "   td {padding: 0px 1em 0px 1em;}\n"
                 "   a {text-decoration: none;}\n"
                 "  </style>\n")
DISABLED_STYLE = ("  <style type=\"text/css\">\n"
                  "   h1 {font-size: 1em; font-weight: bold;}\n"
                  "   p {font-size: 2}\n"
                  "  </style>\n")
SUFFIXES = "KMGTPEZY"


def human_readable(value: float) -> str:
    """Swift's ``human_readable``: 1048576 -> ``1Mi``."""
    index = -1
    while value >= 1024 and index + 1 < len(SUFFIXES):
        index += 1
        value = round(value / 1024)
    if index == -1:
        return f"{int(value)}"
    return f"{round(value)}{SUFFIXES[index]}i"


def css_path(css: str, prefix: str) -> str:
    """The style sheet's URL relative to a listing of ``prefix`` (absolute ones kept)."""
    if css.startswith(("/", "http://", "https://")):
        return quote(css, safe=":/")
    return "../" * prefix.count("/") + quote(css)


def _link(name: str) -> str:
    return quote(name).replace(".", "%2E")


def _head(label: str, css: str, prefix: str, style: str) -> str:
    page = ("<!DOCTYPE html>\n<html>\n <head>\n"
            f"  <title>Listing of {html.escape(label)}</title>\n")
    if css:
        return page + (f"  <link rel=\"stylesheet\" type=\"text/css\" "
                       f"href=\"{css_path(css, prefix)}\" />\n")
    return page + style


def disabled_page(label: str, *, css: str, index: str, prefix: str) -> str:
    """What a site without listings shows for a directory (with a 404)."""
    page = f"<!DOCTYPE html>\n<html>\n<head>\n<title>Listing of {html.escape(label)}</title>\n"
    if css:
        page += (f"  <link rel=\"stylesheet\" type=\"text/css\" "
                 f"href=\"{css_path(css, prefix)}\" />\n")
    else:
        page += DISABLED_STYLE
    page += ("</head>\n<body>  <h1>Web Listing Disabled</h1>"
             "   <p>The owner of this web site has disabled web listing."
             "   <p>If you are the owner of this web site, you can enable"
             "   web listing by setting X-Container-Meta-Web-Listings.</p>")
    if index:
        page += ("<h1>Index File Not Found</h1>"
                 " <p>The owner of this web site has set "
                 f" <b>X-Container-Meta-Web-Index: {html.escape(index)}</b>. "
                 " However, this file is not found.</p>")
    return page + " </body>\n</html>\n"


@dataclass(frozen=True)
class ListingPage:
    """One directory listing: its title, the prefix it lists, the style sheet, and the
    TempURL query its links carry (``tempurl_prefix``: the part of the site it covers)."""

    label: str
    prefix: str
    css: str = ""
    tempurl_query: str = ""
    tempurl_prefix: str = ""

    def render(self, entries: Sequence[Mapping[str, Any]]) -> str:
        label = html.escape(self.label)
        page = _head(self.label, self.css, self.prefix, DEFAULT_STYLE)
        page += (" </head>\n <body>\n"
                 f"  <h1 id=\"title\">Listing of {label}</h1>\n"
                 "  <table id=\"listing\">\n"
                 "   <tr id=\"heading\">\n"
                 "    <th class=\"colname\">Name</th>\n"
                 "    <th class=\"colsize\">Size</th>\n"
                 "    <th class=\"coldate\">Date</th>\n"
                 "   </tr>\n")
        if len(self.prefix) > len(self.tempurl_prefix):
            page += ("   <tr id=\"parent\" class=\"item\">\n"
                     f"    <td class=\"colname\"><a href=\"../{self.tempurl_query}\">../</a></td>\n"
                     "    <td class=\"colsize\">&nbsp;</td>\n"
                     "    <td class=\"coldate\">&nbsp;</td>\n"
                     "   </tr>\n")
        page += "".join(self._subdir(e["subdir"]) for e in entries if "subdir" in e)
        page += "".join(self._object(e) for e in entries if "name" in e)
        return page + "  </table>\n </body>\n</html>\n"

    def _subdir(self, subdir: str) -> str:
        name = subdir[len(self.prefix):]
        return ("   <tr class=\"item subdir\">\n"
                f"    <td class=\"colname\"><a href=\"./{_link(name)}{self.tempurl_query}\">"
                f"{html.escape(name)}</a></td>\n"
                "    <td class=\"colsize\">&nbsp;</td>\n"
                "    <td class=\"coldate\">&nbsp;</td>\n"
                "   </tr>\n")

    def _object(self, entry: Mapping[str, Any]) -> str:
        name = str(entry["name"])[len(self.prefix):]
        kinds = " ".join("type-" + html.escape(t.lower())
                         for t in str(entry.get("content_type", "")).split("/"))
        modified = html.escape(str(entry.get("last_modified", ""))).split(".")[0]
        return (f"   <tr class=\"item {kinds}\">\n"
                f"    <td class=\"colname\"><a href=\"./{_link(name)}{self.tempurl_query}\">"
                f"{html.escape(name)}</a></td>\n"
                f"    <td class=\"colsize\">{human_readable(float(entry.get('bytes', 0)))}</td>\n"
                f"    <td class=\"coldate\">{modified.replace('T', ' ')}</td>\n"
                "   </tr>\n")
