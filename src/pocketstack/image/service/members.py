"""Image members: the projects a ``shared`` image is offered to, and their answers.

The owner adds and removes members (each starts ``pending``); only the member itself
accepts or rejects (or goes back to ``pending``). The owner (and an admin) sees every
member; a member sees only its own membership. Glance's member quota applies (413).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pocketstack.image.exceptions import BadRequest, Forbidden, NotFound
from pocketstack.image.service.records import Caller, ImageRecord, MemberRecord
from pocketstack.image.service.repo import MemberLimitExceeded
from pocketstack.image.service.schema import MEMBER_STATUSES

if TYPE_CHECKING:
    from pocketstack.image.service.hub import ImageHub


class MemberService:
    def __init__(self, hub: ImageHub) -> None:
        self.hub = hub
        self.repo = hub.repo
        self.db = hub.db

    @staticmethod
    def _require_shared(image: ImageRecord, *, fetching: bool) -> None:
        if image.visibility != "shared":
            reason = "Only shared images have members."
            if fetching:
                raise Forbidden(f"Error fetching members of image {image.id}: {reason}")
            raise Forbidden(reason)

    async def list_members(self, caller: Caller, image: ImageRecord) -> list[MemberRecord]:
        self._require_shared(image, fetching=True)
        sees_all = caller.is_admin or caller.project_id == image.owner
        only = None if sees_all else caller.project_id or ""
        return await self.db.run(self.repo.members, image.id, only)

    async def get(self, caller: Caller, image: ImageRecord, member_id: str) -> MemberRecord:
        self._require_shared(image, fetching=True)
        found = [m for m in await self.list_members(caller, image) if m.member_id == member_id]
        if not found:
            raise NotFound(f"{member_id} not found in the member list of the image "
                           f"{image.id}.")
        return found[0]

    async def add(self, image: ImageRecord, body: Any) -> MemberRecord:
        member_id = _field(body, "member", "Member to be added not specified")
        if not member_id:
            raise BadRequest("Member can't be empty")
        if not isinstance(member_id, str) or len(member_id) > 255:
            raise BadRequest("Member must be a string of at most 255 characters.")
        self._require_shared(image, fetching=False)
        limit = self.hub.settings.member_quota
        try:
            return await self.db.run(self.repo.add_member, image.id, member_id, limit)
        except MemberLimitExceeded as exc:
            raise self.hub.quotas.member_error(image.id, exc.attempted, limit) from exc

    async def update(self, caller: Caller, image: ImageRecord, member_id: str, body: Any
                     ) -> MemberRecord:
        status = _field(body, "status", "Status not specified")
        if status not in MEMBER_STATUSES:
            raise BadRequest('Incorrect request: Status must be "pending", "accepted" or '
                             '"rejected".')
        await self.get(caller, image, member_id)
        updated = await self.db.run(self.repo.set_member_status, image.id, member_id, status)
        if updated is None:
            raise NotFound(f"{member_id} not found in the member list of the image "
                           f"{image.id}.")
        return updated

    async def delete(self, caller: Caller, image: ImageRecord, member_id: str) -> None:
        await self.get(caller, image, member_id)
        await self.db.run(self.repo.remove_member, image.id, member_id)


def _field(body: Any, name: str, missing: str) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise BadRequest(missing)
    return body[name]
