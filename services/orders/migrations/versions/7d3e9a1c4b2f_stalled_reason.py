"""orders.stalled_reason: a saga parked after too many technical failures says why

Revision ID: 7d3e9a1c4b2f
Revises: 5c1f0e2a9b7d
Create Date: 2026-12-02 05:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '7d3e9a1c4b2f'
down_revision = '5c1f0e2a9b7d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('stalled_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('stalled_reason')
