from services.common.migrations import run_migrations
from services.orders.models import Base

run_migrations(Base.metadata, "orders")
