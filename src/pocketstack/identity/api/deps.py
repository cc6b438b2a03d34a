"""The FastAPI dependencies of the identity routes: ``Ctx``, the request's context (its
token validated), and ``Body``, its JSON object body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from pocketstack.identity.api.common import RequestContext, context_of, json_body


async def request_context(request: Request) -> RequestContext:
    return await context_of(request, request.app.state.identity, request.app.state.policy)


Ctx = Annotated[RequestContext, Depends(request_context)]
Body = Annotated[dict[str, Any], Depends(json_body)]
