"""shipments.correlation_id: the timer's events carry the order's correlation id

Revision ID: 7d2b4c9e1f30
Revises: 831eaa8b7312
Create Date: 2026-11-22 10:35:00
"""
from alembic import op
import sqlalchemy as sa


revision = '7d2b4c9e1f30'
down_revision = '831eaa8b7312'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('shipments', sa.Column('correlation_id', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('shipments') as batch:
        batch.drop_column('correlation_id')
