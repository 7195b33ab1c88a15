"""GET /api/v1/health: the health report (``plantlink.services.health``), answered 200 whether ``ok`` or
``degraded`` (``/healthz`` is the liveness probe)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from plantlink.api.routes.deps import Who, json_response, services
from plantlink.services import Services
from plantlink.services.health import DeviceReport, HealthReport

router = APIRouter(prefix="/api/v1/health", tags=["health"])


def _device(d: DeviceReport) -> dict[str, Any]:
    return {"device": d.device, "sites": list(d.sites), "status": d.status, "last_error": d.last_error, **d.counters}


def encode(r: HealthReport) -> dict[str, Any]:
    return {"status": r.status, "reasons": list(r.reasons), "devices": [_device(d) for d in r.devices],
            "recorder": r.recorder, "wal": r.wal, "historian": r.historian, "notifier": r.notifier,
            "publish": dict(r.publish), "edges": dict(r.edges), "store": r.store}


@router.get("", summary="Connectors, store, recorder, write-ahead log, historian, notifier: ok or degraded, "
                          "and why")
def health(who: Who, svc: Services = Depends(services)) -> JSONResponse:
    return json_response(encode(svc.health.report(who)))
