"""orders.request_key: a retried create_order returns the order the first call made

Revision ID: 5c1f0e2a9b7d
Revises: 9025dbdebae6
Create Date: 2026-11-22 10:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '5c1f0e2a9b7d'
down_revision = '9025dbdebae6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('request_key', sa.String(length=100), nullable=True))
    op.create_index('uq_orders_customer_request_key', 'orders', ['customer_id', 'request_key'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_orders_customer_request_key', table_name='orders')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('request_key')
