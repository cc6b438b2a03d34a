"""The image service's tables (SQLAlchemy 2): Glance's data model, trimmed to what we serve.

``image`` holds the base properties; additional properties, tags and members have their own
tables. A deleted image keeps its row (status ``deleted``, ``deleted`` true) so its id is never
handed out again, as in Glance; its properties, tags and members are removed with it.
``location`` is the store's name for the image data (never shown to clients).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pocketstack.common.db import declarative_base

Base = declarative_base()

ID = String(36)
NAME = String(255)


class Image(Base):
    __tablename__ = "image"
    __table_args__ = (Index("ix_image_owner_deleted", "owner", "deleted"),
                      Index("ix_image_visibility_deleted", "visibility", "deleted"))
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(NAME)
    owner: Mapped[str | None] = mapped_column(NAME)
    status: Mapped[str] = mapped_column(String(30))
    visibility: Mapped[str] = mapped_column(String(20))
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    disk_format: Mapped[str | None] = mapped_column(String(20))
    container_format: Mapped[str | None] = mapped_column(String(20))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    store: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class ImageProperty(Base):
    __tablename__ = "image_property"
    image_id: Mapped[str] = mapped_column(ForeignKey("image.id"), primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


class ImageTag(Base):
    __tablename__ = "image_tag"
    __table_args__ = (Index("ix_image_tag_value", "value"),)
    image_id: Mapped[str] = mapped_column(ForeignKey("image.id"), primary_key=True)
    value: Mapped[str] = mapped_column(NAME, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ImageMember(Base):
    __tablename__ = "image_member"
    __table_args__ = (Index("ix_image_member_member_status", "member", "status"),)
    image_id: Mapped[str] = mapped_column(ForeignKey("image.id"), primary_key=True)
    member: Mapped[str] = mapped_column(NAME, primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
