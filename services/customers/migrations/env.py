from services.common.migrations import run_migrations
from services.customers.models import Base

run_migrations(Base.metadata, "customers")
