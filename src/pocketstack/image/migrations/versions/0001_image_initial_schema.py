"""image initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('image',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('os_hidden', sa.Boolean(), nullable=False),
    sa.Column('disk_format', sa.String(length=20), nullable=True),
    sa.Column('container_format', sa.String(length=20), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('virtual_size', sa.BigInteger(), nullable=True),
    sa.Column('checksum', sa.String(length=32), nullable=True),
    sa.Column('os_hash_algo', sa.String(length=64), nullable=True),
    sa.Column('os_hash_value', sa.String(length=128), nullable=True),
    sa.Column('min_disk', sa.Integer(), nullable=False),
    sa.Column('min_ram', sa.Integer(), nullable=False),
    sa.Column('store', sa.String(length=64), nullable=True),
    sa.Column('location', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image'))
    )
    with op.batch_alter_table('image', schema=None) as batch_op:
        batch_op.create_index('ix_image_owner_deleted', ['owner', 'deleted'], unique=False)
        batch_op.create_index('ix_image_visibility_deleted', ['visibility', 'deleted'], unique=False)

    op.create_table('image_member',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('member', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_image_member_image_id_image')),
    sa.PrimaryKeyConstraint('image_id', 'member', name=op.f('pk_image_member'))
    )
    with op.batch_alter_table('image_member', schema=None) as batch_op:
        batch_op.create_index('ix_image_member_member_status', ['member', 'status'], unique=False)

    op.create_table('image_property',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_image_property_image_id_image')),
    sa.PrimaryKeyConstraint('image_id', 'name', name=op.f('pk_image_property'))
    )
    op.create_table('image_tag',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_image_tag_image_id_image')),
    sa.PrimaryKeyConstraint('image_id', 'value', name=op.f('pk_image_tag'))
    )
    with op.batch_alter_table('image_tag', schema=None) as batch_op:
        batch_op.create_index('ix_image_tag_value', ['value'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('image_tag', schema=None) as batch_op:
        batch_op.drop_index('ix_image_tag_value')

    op.drop_table('image_tag')
    op.drop_table('image_property')
    with op.batch_alter_table('image_member', schema=None) as batch_op:
        batch_op.drop_index('ix_image_member_member_status')

    op.drop_table('image_member')
    with op.batch_alter_table('image', schema=None) as batch_op:
        batch_op.drop_index('ix_image_visibility_deleted')
        batch_op.drop_index('ix_image_owner_deleted')

    op.drop_table('image')
