from services.common.migrations import run_migrations
from services.notifications.models import Base

run_migrations(Base.metadata, "notifications")
