"""Identity benchmark: token issue (password, and token rescoping) and token validate.

Token validation is what every other service does on every request, so it is the figure
that matters; a password issue is dominated by the bcrypt hash of the password (by design).
The client is aiohttp: httpx's async client costs more CPU per request than the server.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from bench.runner import Result, run


def password_body(user: str, password: str, project: str) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}


async def bench(auth_url: str, user: str, password: str, project: str, *,
                concurrency: int, issue_count: int, validate_count: int) -> list[Result]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        body = password_body(user, password, project)
        async with session.post(f"{auth_url}/auth/tokens", json=body) as response:
            response.raise_for_status()
            token = response.headers["X-Subject-Token"]
        rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                            "scope": body["auth"]["scope"]}}
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}

        async def post(payload: dict[str, Any]) -> int:
            async with session.post(f"{auth_url}/auth/tokens?nocatalog",
                                    json=payload) as response:
                await response.read()
                response.raise_for_status()
            return 0

        async def validate(_: int) -> int:
            async with session.get(f"{auth_url}/auth/tokens?nocatalog",
                                   headers=headers) as response:
                await response.read()
                response.raise_for_status()
            return 0

        return [await run("token issue (password)", lambda _: post(body), count=issue_count,
                          concurrency=concurrency),
                await run("token issue (token)", lambda _: post(rescope),
                          count=validate_count, concurrency=concurrency),
                await run("token validate", validate, count=validate_count,
                          concurrency=concurrency)]
