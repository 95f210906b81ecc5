"""Create the registry tables: OPDs, rooms, nodes, devices, users, tokens, employees,
audit log, node configurations and states, alerts.

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opd_key', sa.String(length=64), nullable=False),
    sa.Column('node_key', sa.String(length=64), nullable=True),
    sa.Column('device_key', sa.String(length=64), nullable=True),
    sa.Column('room_key', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('peak_value', sa.Float(), nullable=True),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('started_at_ms', sa.BigInteger(), nullable=False),
    sa.Column('ended_at_ms', sa.BigInteger(), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=150), nullable=True),
    sa.Column('acknowledged_at_ms', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_open', ['state', 'opd_key'], unique=False)
        batch_op.create_index('ix_alerts_subject', ['opd_key', 'kind', 'subject'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=150), nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('opds', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.String(length=150), nullable=False),
    sa.Column('created_at_ms', sa.BigInteger(), nullable=False),
    sa.Column('expires_at_ms', sa.BigInteger(), nullable=True),
    sa.Column('revoked_at_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_used_at_ms', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('actor', sa.String(length=150), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_ts', ['ts_ms'], unique=False)

    op.create_table('node_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opd_key', sa.String(length=64), nullable=False),
    sa.Column('node_key', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('issued_at_ms', sa.BigInteger(), nullable=False),
    sa.Column('issued_by', sa.String(length=150), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('opd_key', 'node_key', 'version')
    )
    op.create_table('node_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opd_key', sa.String(length=64), nullable=False),
    sa.Column('node_key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('state_since_ms', sa.BigInteger(), nullable=True),
    sa.Column('last_seen_ms', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.JSON(), nullable=True),
    sa.Column('reported_version', sa.Integer(), nullable=True),
    sa.Column('reported_result', sa.String(length=20), nullable=True),
    sa.Column('reported_error', sa.Text(), nullable=True),
    sa.Column('reported_at_ms', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('opd_key', 'node_key')
    )
    op.create_table('opds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('island', sa.String(length=100), nullable=True),
    sa.Column('town', sa.String(length=100), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=150), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('password_hash', sa.String(length=300), nullable=False),
    sa.Column('opds', sa.JSON(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until_ms', sa.BigInteger(), nullable=True),
    sa.Column('created_at_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('employees',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opd_id', sa.Integer(), nullable=False),
    sa.Column('pseudonym', sa.String(length=64), nullable=False),
    sa.Column('nip', sa.String(length=32), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['opd_id'], ['opds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('opd_id', 'pseudonym')
    )
    op.create_table('nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opd_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('mqtt_username', sa.String(length=150), nullable=True),
    sa.Column('password_hash', sa.String(length=300), nullable=True),
    sa.Column('provisioned_at_ms', sa.BigInteger(), nullable=True),
    sa.Column('revoked_at_ms', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['opd_id'], ['opds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mqtt_username'),
    sa.UniqueConstraint('opd_id', 'key')
    )
    op.create_table('rooms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opd_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['opd_id'], ['opds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('opd_id', 'key')
    )
    op.create_table('devices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opd_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('room_key', sa.String(length=64), nullable=True),
    sa.Column('circuit', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opd_id'], ['opds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('opd_id', 'key')
    )


def downgrade() -> None:
    op.drop_table('devices')
    op.drop_table('rooms')
    op.drop_table('nodes')
    op.drop_table('employees')
    op.drop_table('users')
    op.drop_table('opds')
    op.drop_table('node_states')
    op.drop_table('node_configs')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_ts')

    op.drop_table('audit_log')
    op.drop_table('api_tokens')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_subject')
        batch_op.drop_index('ix_alerts_open')

    op.drop_table('alerts')
