"""order_status_history (status, order_id): the metrics' funnel and GMV read the index, not the table

Revision ID: 3e8c1d5a7f20
Revises: 9b4f6c2d8e1a
Create Date: 2026-12-03 15:10:00
"""
from alembic import op


revision = '3e8c1d5a7f20'
down_revision = '9b4f6c2d8e1a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_order_status_history_status_order_id', 'order_status_history', ['status', 'order_id'])


def downgrade() -> None:
    op.drop_index('ix_order_status_history_status_order_id', table_name='order_status_history')
