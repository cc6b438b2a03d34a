"""Glance's error bodies: webob's choice of HTML, JSON or text; keystonemiddleware's 401."""

from __future__ import annotations

import json

from pocketstack.image.exceptions import ImageNotFound, Unauthorized, UnsupportedMediaType, render


def scope(accept: str | None = None, method: str = "GET") -> dict[str, object]:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return {"type": "http", "method": method, "headers": headers}


def test_json_when_json_is_accepted() -> None:
    response = render(ImageNotFound(image_id="x"), scope("application/json"))
    assert response.status_code == 404
    assert json.loads(response.body) == {"message": "No image found with ID x<br /><br />\n\n\n",
                                         "code": "404 Not Found", "title": "Not Found"}


def test_html_for_browsers_and_curl() -> None:
    for accept in ("*/*", "text/html,application/json"):
        body = render(ImageNotFound(image_id="x"), scope(accept)).body.decode()
        assert body.startswith("<html>\n <head>\n  <title>404 Not Found</title>")
        assert "No image found with ID x<br /><br />" in body


def test_plain_text_without_accept() -> None:
    response = render(ImageNotFound(image_id="x"), scope(""))
    assert response.body.decode() == "404 Not Found\n\nNo image found with ID x\n\n   "
    assert response.headers["content-type"].startswith("text/plain")


def test_quality_decides() -> None:
    accept = "text/html;q=0.5, application/json"
    assert render(ImageNotFound(image_id="x"), scope(accept)).headers["content-type"] == \
        "application/json"


def test_415_names_the_type_and_401_is_keystonemiddleware_s() -> None:
    body = render(UnsupportedMediaType(content_type="text/plain"), scope("application/json"))
    assert "text/plain is not supported" in json.loads(body.body)["message"]
    response = render(Unauthorized(headers={"WWW-Authenticate": 'Keystone uri="u"'}), scope())
    assert json.loads(response.body)["error"]["code"] == 401
    assert response.headers["www-authenticate"] == 'Keystone uri="u"'
