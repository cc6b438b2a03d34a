"""identity initial schema

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
    op.create_table('access_rule',
    sa.Column('internal_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=255), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('internal_id', name=op.f('pk_access_rule')),
    sa.UniqueConstraint('id', name=op.f('uq_access_rule_id')),
    sa.UniqueConstraint('user_id', 'service', 'path', 'method', name=op.f('uq_access_rule_user_id_service_path_method'))
    )
    with op.batch_alter_table('access_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_rule_user_id'), ['user_id'], unique=False)

    op.create_table('application_credential',
    sa.Column('internal_id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('system', sa.String(length=16), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('unrestricted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('internal_id', name=op.f('pk_application_credential')),
    sa.UniqueConstraint('id', name=op.f('uq_application_credential_id')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_application_credential_user_id_name'))
    )
    with op.batch_alter_table('application_credential', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_credential_user_id'), ['user_id'], unique=False)

    op.create_table('credential',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('encrypted_blob', sa.LargeBinary(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential'))
    )
    with op.batch_alter_table('credential', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_user_id'), ['user_id'], unique=False)

    op.create_table('domain',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domain')),
    sa.UniqueConstraint('name', name=op.f('uq_domain_name'))
    )
    op.create_table('region',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('parent_region_id', sa.String(length=255), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['parent_region_id'], ['region.id'], name=op.f('fk_region_parent_region_id_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region'))
    )
    op.create_table('revocation_event',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('domain_id', sa.String(length=64), nullable=True),
    sa.Column('role_id', sa.String(length=64), nullable=True),
    sa.Column('audit_id', sa.String(length=32), nullable=True),
    sa.Column('audit_chain_id', sa.String(length=32), nullable=True),
    sa.Column('issued_before', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revocation_event'))
    )
    with op.batch_alter_table('revocation_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revocation_event_audit_id'), ['audit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_revocation_event_revoked_at'), ['revoked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_revocation_event_user_id'), ['user_id'], unique=False)

    op.create_table('service',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service'))
    )
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_type'), ['type'], unique=False)

    op.create_table('application_credential_access_rule',
    sa.Column('application_credential_id', sa.Integer(), nullable=False),
    sa.Column('access_rule_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['access_rule_id'], ['access_rule.internal_id'], name=op.f('fk_application_credential_access_rule_access_rule_id_access_rule'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['application_credential_id'], ['application_credential.internal_id'], name=op.f('fk_application_credential_access_rule_application_credential_id_application_credential'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('application_credential_id', 'access_rule_id', name=op.f('pk_application_credential_access_rule'))
    )
    op.create_table('application_credential_role',
    sa.Column('application_credential_id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['application_credential_id'], ['application_credential.internal_id'], name=op.f('fk_application_credential_role_application_credential_id_application_credential'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('application_credential_id', 'role_id', name=op.f('pk_application_credential_role'))
    )
    op.create_table('endpoint',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('interface', sa.String(length=8), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_endpoint_region_id_region')),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_endpoint_service_id_service')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint'))
    )
    with op.batch_alter_table('endpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_service_id'), ['service_id'], unique=False)

    op.create_table('group',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], name=op.f('fk_group_domain_id_domain')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group')),
    sa.UniqueConstraint('domain_id', 'name', name=op.f('uq_group_domain_id_name'))
    )
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_domain_id'), ['domain_id'], unique=False)

    op.create_table('project',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], name=op.f('fk_project_domain_id_domain')),
    sa.ForeignKeyConstraint(['parent_id'], ['project.id'], name=op.f('fk_project_parent_id_project')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project')),
    sa.UniqueConstraint('domain_id', 'name', name=op.f('uq_project_domain_id_name'))
    )
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_domain_id'), ['domain_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_parent_id'), ['parent_id'], unique=False)

    op.create_table('role',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], name=op.f('fk_role_domain_id_domain')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role'))
    )
    # Role names are unique among global roles and within each domain (NULL domain = global).
    op.create_index('ix_role_name_domain', 'role',
                    ['name', sa.text("coalesce(domain_id, '')")], unique=True)
    op.create_table('user',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('default_project_id', sa.String(length=64), nullable=True),
    sa.Column('password_hash', sa.String(length=128), nullable=True),
    sa.Column('password_created_at', sa.DateTime(), nullable=True),
    sa.Column('password_expires_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('last_active_at', sa.DateTime(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], name=op.f('fk_user_domain_id_domain')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('domain_id', 'name', name=op.f('uq_user_domain_id_name'))
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_domain_id'), ['domain_id'], unique=False)

    op.create_table('assignment',
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('role_id', sa.String(length=64), nullable=False),
    sa.Column('inherited', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['role.id'], name=op.f('fk_assignment_role_id_role'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('type', 'actor_id', 'target_id', 'role_id', 'inherited', name=op.f('pk_assignment'))
    )
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignment_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_role_id'), ['role_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_target_id'), ['target_id'], unique=False)

    op.create_table('implied_role',
    sa.Column('prior_role_id', sa.String(length=64), nullable=False),
    sa.Column('implied_role_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['implied_role_id'], ['role.id'], name=op.f('fk_implied_role_implied_role_id_role'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prior_role_id'], ['role.id'], name=op.f('fk_implied_role_prior_role_id_role'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('prior_role_id', 'implied_role_id', name=op.f('pk_implied_role'))
    )
    op.create_table('project_tag',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_tag_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'name', name=op.f('pk_project_tag'))
    )
    op.create_table('user_group_membership',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['group.id'], name=op.f('fk_user_group_membership_group_id_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_group_membership_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'group_id', name=op.f('pk_user_group_membership'))
    )
    with op.batch_alter_table('user_group_membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_group_membership_group_id'), ['group_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('user_group_membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_group_membership_group_id'))

    op.drop_table('user_group_membership')
    op.drop_table('project_tag')
    op.drop_table('implied_role')
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignment_target_id'))
        batch_op.drop_index(batch_op.f('ix_assignment_role_id'))
        batch_op.drop_index(batch_op.f('ix_assignment_actor_id'))

    op.drop_table('assignment')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_domain_id'))

    op.drop_table('user')
    op.drop_index('ix_role_name_domain', table_name='role')
    op.drop_table('role')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_parent_id'))
        batch_op.drop_index(batch_op.f('ix_project_domain_id'))

    op.drop_table('project')
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_domain_id'))

    op.drop_table('group')
    with op.batch_alter_table('endpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_service_id'))

    op.drop_table('endpoint')
    op.drop_table('application_credential_role')
    op.drop_table('application_credential_access_rule')
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_type'))

    op.drop_table('service')
    with op.batch_alter_table('revocation_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revocation_event_user_id'))
        batch_op.drop_index(batch_op.f('ix_revocation_event_revoked_at'))
        batch_op.drop_index(batch_op.f('ix_revocation_event_audit_id'))

    op.drop_table('revocation_event')
    op.drop_table('region')
    op.drop_table('domain')
    with op.batch_alter_table('credential', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credential_user_id'))

    op.drop_table('credential')
    with op.batch_alter_table('application_credential', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_credential_user_id'))

    op.drop_table('application_credential')
    with op.batch_alter_table('access_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_rule_user_id'))

    op.drop_table('access_rule')
