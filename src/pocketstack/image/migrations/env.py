"""Alembic environment of the image service (run by pocketstack.common.db.Database.migrate)."""

from alembic import context

from pocketstack.common.db import run_migrations
from pocketstack.image.models import Base

run_migrations(context, Base.metadata)
