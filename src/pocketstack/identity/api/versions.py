"""Version discovery: ``GET /`` (300, every version) and ``GET /v3`` (this version)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from pocketstack.identity.api.common import base_url

router = APIRouter()

VERSION_ID = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json"}]


def v3_version(request: Request) -> dict[str, Any]:
    return {"id": VERSION_ID, "status": "stable", "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{base_url(request)}/v3/"}],
            "media-types": MEDIA_TYPES}


@router.api_route("/", methods=["GET", "HEAD"])
async def versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": {"values": [v3_version(request)]}}, status_code=300)


@router.api_route("/v3", methods=["GET", "HEAD"])
@router.api_route("/v3/", methods=["GET", "HEAD"], include_in_schema=False)
async def version_v3(request: Request) -> JSONResponse:
    return JSONResponse({"version": v3_version(request)})
