"""orders.product_prices: a local read model of the catalog's prices, kept current by its events

Revision ID: 9b4f6c2d8e1a
Revises: 7d3e9a1c4b2f
Create Date: 2026-12-02 05:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '9b4f6c2d8e1a'
down_revision = '7d3e9a1c4b2f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'product_prices',
        sa.Column('product_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('sku', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('price_cents', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('product_id'),
    )


def downgrade() -> None:
    op.drop_table('product_prices')
