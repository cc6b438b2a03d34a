"""The image tables behind one class: reads, writes, visibility and paging in SQL.

Blocking code: the service runs every method in the database's threads (``db.run``).
Visibility follows Glance's database layer: an admin sees every image; anyone else sees the
images its project owns, public ones, shared ones it is a member of, and community ones
(listed only when asked for with ``visibility=community`` or ``all``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.image import models as m
from pocketstack.image.exceptions import BadRequest, Conflict
from pocketstack.image.service.query import ListQuery
from pocketstack.image.service.records import Caller, ImageRecord, MemberRecord, utcnow

_COLUMNS = ("id", "name", "owner", "status", "visibility", "protected", "os_hidden",
            "disk_format", "container_format", "size", "virtual_size", "checksum",
            "os_hash_algo", "os_hash_value", "min_disk", "min_ram", "created_at", "updated_at",
            "store", "location")
# Nullable sort keys sort as if empty, so paging can compare them.
_SORT_DEFAULTS: dict[str, Any] = {"name": "", "container_format": "", "disk_format": "",
                                  "size": -1}


def _record(row: m.Image, properties: dict[str, str | None], tags: list[str]) -> ImageRecord:
    return ImageRecord(**{c: getattr(row, c) for c in _COLUMNS}, properties=properties,
                       tags=tags)


def _count(s: Session, statement: Any) -> int:
    """Run an UPDATE or DELETE; the number of rows it touched."""
    return int(getattr(s.execute(statement), "rowcount", 0))


def _member(row: m.ImageMember) -> MemberRecord:
    return MemberRecord(row.image_id, row.member, row.status, row.created_at, row.updated_at)


class ImageRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading -------------------------------------------------------------------------------
    def get(self, image_id: str, caller: Caller | None = None) -> ImageRecord | None:
        """The image if it exists (not deleted) and ``caller`` may see it (None: anyone)."""
        with self.db.session() as s:
            row = s.get(m.Image, image_id)
            if row is None or row.deleted:
                return None
            if caller is not None and not self._visible(s, caller, row):
                return None
            return self._load(s, [row])[0]

    def _visible(self, s: Session, caller: Caller, row: m.Image) -> bool:
        if caller.is_admin or row.visibility in ("public", "community"):
            return True
        if caller.project_id is None:
            return False
        if row.owner == caller.project_id:
            return True
        if row.visibility != "shared":
            return False
        return s.get(m.ImageMember, (row.id, caller.project_id)) is not None

    def _load(self, s: Session, rows: Sequence[m.Image]) -> list[ImageRecord]:
        ids = [row.id for row in rows]
        props: dict[str, dict[str, str | None]] = {i: {} for i in ids}
        tags: dict[str, list[str]] = {i: [] for i in ids}
        for prop in s.scalars(select(m.ImageProperty).where(m.ImageProperty.image_id.in_(ids))):
            props[prop.image_id][prop.name] = prop.value
        tag_rows = s.scalars(select(m.ImageTag).where(m.ImageTag.image_id.in_(ids))
                             .order_by(m.ImageTag.created_at, m.ImageTag.value))
        for tag in tag_rows:
            tags[tag.image_id].append(tag.value)
        return [_record(row, props[row.id], tags[row.id]) for row in rows]

    def list_images(self, caller: Caller, query: ListQuery) -> list[ImageRecord]:
        keys = _sort_keys(query.sort)
        with self.db.session() as s:
            stmt = select(m.Image).where(m.Image.deleted == false(),
                                         *_visibility(caller, query), *_filters(query))
            if query.marker is not None:
                marker = s.get(m.Image, query.marker)
                if marker is None or marker.deleted or not self._visible(s, caller, marker):
                    raise BadRequest(f"No image found with ID {query.marker}")
                stmt = stmt.where(_after(marker, keys))
            order = [_sort_expr(k).asc() if d == "asc" else _sort_expr(k).desc()
                     for k, d in keys]
            rows = list(s.scalars(stmt.order_by(*order).limit(query.limit)))
            return self._load(s, rows) if rows else []

    def usage(self, owner: str) -> tuple[int, int]:
        """(images, bytes of image data) the project owns (deleted images do not count)."""
        with self.db.session() as s:
            count, size = s.execute(select(func.count(m.Image.id),
                                           func.coalesce(func.sum(m.Image.size), 0))
                                    .where(m.Image.owner == owner,
                                           m.Image.deleted == false())).one()
            return int(count or 0), int(size or 0)

    # -- writing -------------------------------------------------------------------------------
    def create(self, values: dict[str, Any], properties: dict[str, str | None],
               tags: Iterable[str]) -> ImageRecord:
        now = utcnow()
        row = m.Image(**values, created_at=now, updated_at=now, deleted=False)
        try:
            with self.db.session() as s:
                s.add(row)
                s.flush()
                s.add_all(m.ImageProperty(image_id=row.id, name=k, value=v)
                          for k, v in properties.items())
                s.add_all(m.ImageTag(image_id=row.id, value=t, created_at=now)
                          for t in dict.fromkeys(tags))
                s.flush()
                return self._load(s, [row])[0]
        except IntegrityError as exc:
            raise Conflict(f"An image with identifier {values['id']} already exists") from exc

    def save(self, image: ImageRecord, *, properties_changed: bool, tags_changed: bool
             ) -> ImageRecord:
        """Write back a changed record (base attributes, and properties/tags if changed)."""
        now = utcnow()
        fields = {c: getattr(image, c) for c in _COLUMNS if c not in ("id", "created_at")}
        fields["updated_at"] = now
        with self.db.session() as s:
            done = _count(s, update(m.Image).where(m.Image.id == image.id,
                                                   m.Image.deleted == false())
                             .values(**fields))
            if not done:
                return image
            if properties_changed:
                _count(s, delete(m.ImageProperty).where(m.ImageProperty.image_id == image.id))
                s.add_all(m.ImageProperty(image_id=image.id, name=k, value=v)
                          for k, v in image.properties.items())
            if tags_changed:
                self._replace_tags(s, image.id, image.tags, now)
            s.flush()
            return self._load(s, [s.get(m.Image, image.id)])[0]  # type: ignore[list-item]

    @staticmethod
    def _replace_tags(s: Session, image_id: str, tags: list[str], now: Any) -> None:
        existing = set(s.scalars(select(m.ImageTag.value).where(m.ImageTag.image_id == image_id)))
        wanted = list(dict.fromkeys(tags))
        _count(s, delete(m.ImageTag).where(m.ImageTag.image_id == image_id,
                                           m.ImageTag.value.not_in(wanted)))
        s.add_all(m.ImageTag(image_id=image_id, value=t, created_at=now)
                  for t in wanted if t not in existing)

    def transition(self, image_id: str, current: Iterable[str], new: str, **fields: Any
                   ) -> bool:
        """Set ``status = new`` (and ``fields``) only if the status is one of ``current``."""
        with self.db.session() as s:
            done = _count(s, update(m.Image).where(
                m.Image.id == image_id, m.Image.deleted == false(),
                m.Image.status.in_(list(current)))
                .values(status=new, updated_at=utcnow(), **fields))
        return bool(done)

    def mark_deleted(self, image_id: str) -> bool:
        now = utcnow()
        with self.db.session() as s:
            done = _count(s, update(m.Image).where(m.Image.id == image_id,
                                                   m.Image.deleted == false())
                             .values(status="deleted", deleted=True, deleted_at=now,
                                     updated_at=now))
            for table in (m.ImageProperty, m.ImageTag, m.ImageMember):
                _count(s, delete(table).where(table.image_id == image_id))
        return bool(done)

    def stuck(self, statuses: Iterable[str]) -> list[tuple[str, str]]:
        """(id, status) of the images left in one of ``statuses`` (after a crash)."""
        with self.db.session() as s:
            return [(r.id, r.status) for r in s.execute(
                select(m.Image.id, m.Image.status).where(m.Image.deleted == false(),
                                                         m.Image.status.in_(list(statuses))))]

    # -- members -------------------------------------------------------------------------------
    def members(self, image_id: str, member_id: str | None = None) -> list[MemberRecord]:
        stmt = select(m.ImageMember).where(m.ImageMember.image_id == image_id)
        if member_id is not None:
            stmt = stmt.where(m.ImageMember.member == member_id)
        with self.db.session() as s:
            return [_member(r) for r in s.scalars(stmt.order_by(m.ImageMember.created_at))]

    def add_member(self, image_id: str, member_id: str, limit: int) -> MemberRecord:
        now = utcnow()
        duplicate = Conflict(f"Member {member_id} is duplicated for image {image_id}")
        try:
            with self.db.session() as s:
                if s.get(m.ImageMember, (image_id, member_id)) is not None:
                    raise duplicate
                count = s.scalar(select(func.count()).select_from(m.ImageMember).where(
                    m.ImageMember.image_id == image_id)) or 0
                if limit and count + 1 > limit:
                    raise MemberLimitExceeded(count + 1)
                row = m.ImageMember(image_id=image_id, member=member_id, status="pending",
                                    created_at=now, updated_at=now)
                s.add(row)
                s.flush()
                return _member(row)
        except IntegrityError as exc:
            raise duplicate from exc

    def set_member_status(self, image_id: str, member_id: str, status: str
                          ) -> MemberRecord | None:
        with self.db.session() as s:
            row = s.get(m.ImageMember, (image_id, member_id))
            if row is None:
                return None
            row.status, row.updated_at = status, utcnow()
            s.flush()
            return _member(row)

    def remove_member(self, image_id: str, member_id: str) -> bool:
        with self.db.session() as s:
            return bool(_count(s, delete(m.ImageMember).where(
                m.ImageMember.image_id == image_id,
                m.ImageMember.member == member_id)))


class MemberLimitExceeded(Exception):
    """Adding a member would pass the per-image member quota."""

    def __init__(self, attempted: int) -> None:
        super().__init__(attempted)
        self.attempted = attempted


# -- query building (pure SQL expressions) -------------------------------------------------------
def _member_of(project_id: str, status: str | None) -> ColumnElement[bool]:
    cond = [m.ImageMember.image_id == m.Image.id, m.ImageMember.member == project_id]
    if status is not None:
        cond.append(m.ImageMember.status == status)
    return exists().where(*cond)


def _visibility(caller: Caller, query: ListQuery) -> list[ColumnElement[bool]]:
    wanted = query.visibility
    if caller.is_admin:
        return [] if wanted in (None, "all") else [m.Image.visibility == wanted]
    project = caller.project_id
    public = m.Image.visibility == "public"
    community = m.Image.visibility == "community"
    if project is None:
        return [{"community": community, "all": or_(public, community)}.get(wanted or "",
                                                                           public)]
    status = None if query.member_status == "all" else query.member_status
    own = m.Image.owner == project
    shared = and_(m.Image.visibility == "shared", _member_of(project, status))
    choices = {None: or_(own, public, shared), "all": or_(own, public, shared, community),
               "public": public, "community": community,
               "private": and_(own, m.Image.visibility == "private"),
               "shared": and_(m.Image.visibility == "shared", or_(own, _member_of(project,
                                                                                  status)))}
    return [choices[wanted]]


def _filters(query: ListQuery) -> list[ColumnElement[bool]]:
    cond: list[ColumnElement[bool]] = [m.Image.os_hidden == query.os_hidden]
    for name, values in query.in_filters.items():
        cond.append(getattr(m.Image, name).in_(values))
    for name, value in query.exact.items():
        cond.append(getattr(m.Image, name) == value)
    for name, op, when in query.times:
        cond.append(_compare(getattr(m.Image, name), op, when))
    if query.protected is not None:
        cond.append(m.Image.protected == query.protected)
    if query.size_min is not None:
        cond.append(m.Image.size >= query.size_min)
    if query.size_max is not None:
        cond.append(m.Image.size <= query.size_max)
    for tag in query.tags:
        cond.append(exists().where(m.ImageTag.image_id == m.Image.id, m.ImageTag.value == tag))
    for name, value in query.properties.items():
        cond.append(exists().where(m.ImageProperty.image_id == m.Image.id,
                                   m.ImageProperty.name == name,
                                   m.ImageProperty.value == value))
    return cond


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    compared: ColumnElement[bool] = {
        "gt": column > value, "gte": column >= value, "eq": column == value,
        "neq": column != value, "lt": column < value, "lte": column <= value}[op]
    return compared


def _sort_keys(sort: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Glance's order: the requested keys, then created_at and id as tie breakers."""
    keys = list(sort)
    default_dir = keys[0][1] if keys else "desc"
    for name in ("created_at", "id"):
        if name not in (k for k, _ in keys):
            keys.append((name, default_dir))
    return keys


def _sort_expr(name: str) -> Any:
    column = getattr(m.Image, name)
    return func.coalesce(column, _SORT_DEFAULTS[name]) if name in _SORT_DEFAULTS else column


def _after(marker: m.Image, keys: list[tuple[str, str]]) -> ColumnElement[bool]:
    """Rows after ``marker`` in the order of ``keys`` (keyset paging)::

        k1 > v1  or  (k1 = v1 and k2 > v2)  or  ...   (< for descending keys)
    """
    clauses = []
    for i, (name, direction) in enumerate(keys):
        equal = [_sort_expr(k) == _marker_value(marker, k) for k, _ in keys[:i]]
        value = _marker_value(marker, name)
        beyond = _sort_expr(name) > value if direction == "asc" else _sort_expr(name) < value
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def _marker_value(marker: m.Image, name: str) -> Any:
    value = getattr(marker, name)
    return _SORT_DEFAULTS.get(name) if value is None else value
