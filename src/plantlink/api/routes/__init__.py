"""REST routers under /api/v1, one small module per subject; ``ROUTERS`` lists them for ``create_app``."""

from __future__ import annotations

from fastapi import APIRouter

from plantlink.api.routers_alarms import router as alarms_router
from plantlink.api.routers_control import router as control_router
from plantlink.api.routes.analytics import router as analytics_router
from plantlink.api.routes.audit import router as audit_router
from plantlink.api.routes.downtime import router as downtime_router
from plantlink.api.routes.energy import router as energy_router
from plantlink.api.routes.export import router as export_router
from plantlink.api.routes.health import router as health_router
from plantlink.api.routes.hierarchy import router as hierarchy_router
from plantlink.api.routes.history import router as history_router
from plantlink.api.routes.lines import router as lines_router
from plantlink.api.routes.model import router as model_router
from plantlink.api.routes.oee import router as oee_router
from plantlink.api.routes.reports import router as reports_router
from plantlink.api.routes.spc import router as spc_router
from plantlink.api.routes.sql import router as sql_router
from plantlink.api.routes.states import router as states_router
from plantlink.api.routes.stream import router as stream_router
from plantlink.api.routes.tags import router as tags_router
from plantlink.api.routes.trends import router as trends_router

ROUTERS: list[APIRouter] = [
    hierarchy_router, tags_router, history_router, states_router, oee_router, downtime_router, lines_router,
    stream_router, alarms_router, control_router, audit_router, health_router, trends_router, export_router,
    spc_router, energy_router, sql_router, reports_router, analytics_router, model_router,
]
