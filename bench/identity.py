"""Identity benchmark: token issue (password) and token validate, at concurrency N.

Token validation is what every other service does on every request, so it is the figure
that matters; issue is dominated by the bcrypt hash of the password (by design).
"""

from __future__ import annotations

import httpx

from bench.runner import Result, run


def password_body(user: str, password: str, project: str) -> dict[str, object]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}


async def bench(auth_url: str, user: str, password: str, project: str, *,
                concurrency: int, issue_count: int, validate_count: int) -> list[Result]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=auth_url, limits=limits, timeout=60) as client:
        body = password_body(user, password, project)

        async def issue(_: int) -> int:
            response = await client.post("/auth/tokens?nocatalog", json=body)
            response.raise_for_status()
            return 0

        token = (await client.post("/auth/tokens", json=body)).headers["X-Subject-Token"]
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}

        async def rescope(_: int) -> int:
            response = await client.post("/auth/tokens?nocatalog", json={"auth": {
                "identity": {"methods": ["token"], "token": {"id": token}},
                "scope": body["auth"]["scope"]}})  # type: ignore[index]
            response.raise_for_status()
            return 0

        async def validate(_: int) -> int:
            response = await client.get("/auth/tokens?nocatalog", headers=headers)
            response.raise_for_status()
            return 0

        return [await run("token issue (password)", issue, count=issue_count,
                          concurrency=concurrency),
                await run("token issue (token)", rescope, count=validate_count,
                          concurrency=concurrency),
                await run("token validate", validate, count=validate_count,
                          concurrency=concurrency)]
