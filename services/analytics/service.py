"""analytics: the latest KPI windows over RPC (the gateway's GET /api/analytics/kpis calls get_kpis)."""

from __future__ import annotations

from typing import Any

from services.analytics.lag import ConsumerLag
from services.analytics.windows import MAX_WINDOWS, KpiWindows, Windows
from services.common.errors import ServiceUnavailable, ValidationFailed
from services.common.rpc import rpc
from services.common.telemetry import Telemetry
from services.kafka_sink.topics import KPIS, bootstrap_servers


class AnalyticsService:
    name = "analytics"

    windows = Windows()
    telemetry = Telemetry(collect=ConsumerLag(bootstrap_servers()))

    @rpc
    def get_kpis(self, limit: int = 10) -> dict[str, Any]:
        """The ``limit`` newest KPI windows, newest first, each with its bounds.

        Raises ServiceUnavailable while the KPI topic cannot be read and nothing was read before.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_WINDOWS:
            raise ValidationFailed("invalid input",
                                   {"fields": {"limit": [f"must be an integer from 1 to {MAX_WINDOWS}"]}})
        windows: KpiWindows = self.windows
        latest = windows.latest(limit)
        if not latest and not windows.reachable:
            raise ServiceUnavailable(f"analytics: the KPI topic {KPIS.name} cannot be read yet")
        return {
            "windows": latest,
            "topic": KPIS.name,
            "reachable": windows.reachable,
            "last_read_at": windows.last_read_at,
        }
