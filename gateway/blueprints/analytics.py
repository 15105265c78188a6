"""/api/analytics: the KPI windows of the Flink job, for admins (docs/analytics.md)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc
from gateway.auth import admin_required
from gateway.openapi import operation
from gateway.schemas import KpiQuery, KpiResponse
from gateway.validation import query_args

bp = Blueprint("analytics", __name__, url_prefix="/api/analytics")


@bp.get("/kpis")
@operation("The newest KPI windows, newest first, with their bounds", "analytics", query=KpiQuery,
           responses={200: (KpiResponse, "The windows and where they were read from")})
@admin_required
def kpis() -> ResponseReturnValue:
    query = query_args(KpiQuery())
    return jsonify(rpc.call("analytics", "get_kpis", query["limit"]))
