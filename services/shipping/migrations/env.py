from services.common.migrations import run_migrations
from services.shipping.models import Base

run_migrations(Base.metadata, "shipping")
