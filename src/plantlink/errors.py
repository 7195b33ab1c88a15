"""The one exception tree of plantlink: every error raised on purpose is a ``PlantlinkError``.

Each class carries the HTTP ``status`` and the ``code`` that the API answers with (``plantlink.api.errors``
turns any ``PlantlinkError`` into the JSON error envelope), a ``message`` for people and optionally the
``field`` (the argument at fault). A few classes decide status and code per instance (``AlarmActionError``
from its ``status``, ``ControlRefused`` from its reason, ``ApiError`` from its arguments). Anything with status
500 is a fault of the server: the API answers it with code ``internal`` and a correlation id, never the
message. ``tree()`` lists the tree (docs/errors.md shows it; tests/test_errors.py pins it)::

    PlantlinkError             500 internal       a fault of the server (the base: never raised for bad input)
    ├── RequestError           400 bad_request    a request that cannot be done as asked
    │   ├── QueryError         400 bad_query      a query's arguments are invalid (reversed range, ...)
    │   ├── ReasonError        400 bad_reason     a downtime reason not in the line's tree
    │   ├── AuditError         400 bad_request    an audit record or query with invalid arguments
    │   ├── InvalidValue       422 invalid        a value of the wrong type or out of bounds
    │   ├── AnalysisError      400 bad_data       data or settings an analysis cannot use (too few points, ...)
    │   └── SubscriptionError  400 bad_request    a live-stream message that cannot be done (code per case)
    ├── Unauthenticated        401 unauthenticated  nobody is logged in
    ├── AccessDenied           403 forbidden      the caller lacks the role needed at a site
    ├── NotFound               404 not_found      an object that does not exist (or the caller may not know of)
    ├── Conflict               409 conflict       an action that does not apply in the present state
    │   ├── AlarmActionError   409 conflict       an alarm action refused (404, 403 or 422 per case)
    │   └── ControlRefused     409 conflict       a control request refused (status and code from its reason)
    ├── Unavailable            503 unavailable    a part of the server that is not running
    ├── ConfigError            400 bad_config     a plant model or setting that cannot be used (every problem)
    ├── PluginError            500 internal       an unknown or broken plugin
    ├── ConnectorError         500 internal       a device could not be read or written
    │   ├── DeviceUnavailable  503 unavailable    the device is down / not connected
    │   └── PointError         500 internal       one point (tag) could not be read or decoded
    ├── HistorianError         500 internal       the historian refused a write or could not answer
    ├── StoreError             500 internal       the relational store refused an operation
    │   └── StoreOpenError     500 internal       the store at a URL cannot be opened (credentials, database, schema)
    │       └── StoreUnavailable 503 unavailable  the store's server does not answer (down, unreachable)
    └── AuthError              500 internal       identity and access (TLS, keys) that cannot be set up
        ├── AuthFailed         401 bad_credentials  wrong user name or password
        ├── LockedOut          429 locked         too many failed logins: retry after ``retry_after`` s
        ├── Busy               503 busy           the password checks are full: retry after ``retry_after`` s
        ├── UserNotFound       404 not_found      no such user
        └── InvalidRequest     400 bad_request    a bad name, role, site, password or token request

(Subclasses defined next to their code, e.g. ``ControlRefused`` in ``plantlink.control.records`` or the
connectors' ``ConnectionLost``, are in ``tree()`` too.)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

#: Modules that define members of the tree outside this one (imported by ``tree()`` to list them all).
EXTENSIONS = ("plantlink.control.records", "plantlink.api.errors", "plantlink.connectors.modbus.client",
              "plantlink.connectors.opcua.pki", "plantlink.client.remote", "plantlink.client.embedded")


class PlantlinkError(Exception):
    """Base of every error plantlink raises on purpose: a fault of the server unless a subclass says more."""

    status: int = 500
    code: str = "internal"
    field: str | None = None
    message: str = ""

    def __init__(self, message: str = "", field: str | None = None):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


# -- the caller's fault (4xx) -----------------------------------------------------------------------------
class RequestError(PlantlinkError):
    """A request that cannot be done as asked; ``field`` names the argument at fault."""

    status, code = 400, "bad_request"


class QueryError(RequestError):
    """A query with invalid arguments (unknown tag id, reversed range, too many points, ...)."""

    status, code = 400, "bad_query"


class ReasonError(RequestError):
    """A downtime reason that the line's reason tree does not have (the message lists the valid ones)."""

    status, code, field = 400, "bad_reason", "reason"


class AuditError(RequestError):
    """An audit record that cannot be written (bad arguments) or a query with invalid filters."""


class InvalidValue(RequestError):
    """A value of the wrong type or out of bounds."""

    status, code = 422, "invalid"


class AnalysisError(RequestError, ValueError):
    """Data or settings that an analysis (SPC limits, capability) cannot use: too few subgroups or points, no
    variation, missing specification limits. ``tag`` and ``period`` (``(start_us, end_us)``) say where, when
    known: ``at(tag, period)`` returns a copy that names them. Also a ``ValueError``."""

    status, code = 400, "bad_data"

    def __init__(self, message: str, field: str | None = None, *, tag: str | None = None,
                 period: tuple[int, int] | None = None):
        self.reason, self.tag, self.period = message, tag, period
        where = ""
        if tag is not None:
            where = f"tag {tag}" + (f" over [{_iso(period[0])}, {_iso(period[1])})" if period else "") + ": "
        super().__init__(where + message, field)

    def at(self, tag: str, period: tuple[int, int] | None = None) -> AnalysisError:
        """The same error naming ``tag`` and ``period``."""
        return AnalysisError(self.reason, self.field, tag=tag, period=period)


class BaselineError(AnalysisError):
    """A baseline or batch an anomaly detector cannot use (too few rows, a tag without data, a constant or
    non-finite column); the message names the machine, the tag and the period. Also a ``ValueError``."""


class RULError(AnalysisError):
    """Input the remaining-useful-life estimator cannot use (too few failures or cycles, a short history); the
    message names the machine, the sensor or the period. Also a ``ValueError``."""


def _iso(us: int) -> str:
    from datetime import UTC, datetime
    at = datetime.fromtimestamp(us / 1e6, UTC)
    return at.isoformat(timespec="milliseconds" if us % 1_000_000 else "seconds").replace("+00:00", "Z")


class SubscriptionError(RequestError):
    """A live-stream message that cannot be done; ``code`` says why (``bad_request``, ``too_many``,
    ``not_found``, ``forbidden``): the stream answers ``{"type": "error", "code": ..., ...}``."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message, field)
        self.code = code


class Unauthenticated(PlantlinkError):
    """Nobody is logged in (no session, no API token)."""

    status, code = 401, "unauthenticated"


class AccessDenied(PlantlinkError):
    """The caller lacks the role needed at a site (``field`` is ``site``)."""

    status, code, field = 403, "forbidden", "site"

    def __init__(self, message: str, site: str | None = None):
        super().__init__(message)
        self.site = site


class NotFound(PlantlinkError):
    """An object that does not exist (or that the caller may not know about); ``field`` names the argument."""

    status, code = 404, "not_found"


class Conflict(PlantlinkError):
    """An action that does not apply in the present state."""

    status, code = 409, "conflict"


_CODES = {403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid", 503: "unavailable"}


class AlarmActionError(Conflict):
    """An operator action that does not apply: wrong state (``status`` 409), unknown alarm (404), no rights at
    the alarm's site (403, ``field`` ``site``), bad arguments (422) or no alarm system (503)."""

    def __init__(self, message: str, status: int = 409, alarm: str | None = None):
        super().__init__(message, "site" if status == 403 else "alarm")
        self.status, self.code, self.alarm = status, _CODES.get(status, "conflict"), alarm


class Unavailable(PlantlinkError):
    """A part of the server that is not running (the historian, the store, the alarm system, ...)."""

    status, code = 503, "unavailable"


# -- configuration and plugins --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file, located precisely enough for a person to fix it."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        at = f" [{self.path}]" if self.path else ""
        return f"{where}:{at} {self.message}"


class ConfigError(PlantlinkError):
    """A configuration that cannot be used. ``problems`` lists every problem found, not just the first."""

    status, code = 400, "bad_config"

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems) or "invalid configuration")


class PluginError(PlantlinkError):
    """An unknown or broken plugin."""


# -- devices, historian, store: faults of the server -----------------------------------------------------------
class ConnectorError(PlantlinkError):
    """A device could not be read or written."""


class DeviceUnavailable(ConnectorError):
    """The device is not connected."""

    status, code = 503, "unavailable"


class PointError(ConnectorError):
    """One point could not be read, decoded or encoded."""


class HistorianError(PlantlinkError):
    """The historian refused a write or could not answer (bad arguments of a query are a ``QueryError``)."""


class StoreError(PlantlinkError):
    """The relational store refused an operation or its arguments."""


class StoreOpenError(StoreError):
    """The store at a URL cannot be opened as configured: wrong credentials, no such database, a schema that a
    newer plantlink wrote. ``url`` is the URL without its password; the message says what to do."""

    def __init__(self, message: str, url: str = ""):
        super().__init__(message, "store_url")
        self.url = url


class StoreUnavailable(StoreOpenError):
    """The store's server does not answer (down, unreachable, refusing connections): trying again later may
    work."""

    status, code = 503, "unavailable"


# -- identity and access ----------------------------------------------------------------------------------------
class AuthError(PlantlinkError):
    """Identity and access that cannot be done or set up. Messages never contain a password or a token."""


class AuthFailed(AuthError):
    """Wrong user name or password (deliberately the same message for unknown, disabled and wrong)."""

    status, code = 401, "bad_credentials"

    def __init__(self) -> None:
        super().__init__("wrong user name or password")


class LockedOut(AuthError):
    """Too many failed logins for this user and client (or slowed: see ``LoginThrottle``); try again after
    ``retry_after`` seconds."""

    status, code = 429, "locked"

    def __init__(self, retry_after: float):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many failed logins; try again in {self.retry_after} s")


class Busy(AuthError):
    """Too many logins at once: the password checks are full; try again after ``retry_after`` seconds."""

    status, code = 503, "busy"

    def __init__(self, retry_after: float):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many logins at once; try again in {self.retry_after} s")


class UserNotFound(AuthError):
    status, code = 404, "not_found"

    def __init__(self, name: str):
        super().__init__(f"no user named {name!r}")


class InvalidRequest(AuthError):
    """A bad argument (name, role, site, password policy, token lifetime, scope wider than the creator's)."""

    status, code = 400, "bad_request"


def tree(root: type[PlantlinkError] = PlantlinkError) -> dict[str, Any]:
    """The tree under ``root``: ``{"name", "status", "code", "children": [...]}``, children in name order.

    Lists plantlink's own classes only (those of ``plantlink.*`` modules), after importing ``EXTENSIONS``."""
    for module in EXTENSIONS:
        importlib.import_module(module)
    return _node(root)


def _node(cls: type[PlantlinkError]) -> dict[str, Any]:
    kids = sorted((c for c in cls.__subclasses__() if c.__module__.startswith("plantlink.")),
                  key=lambda c: c.__name__)
    return {"name": cls.__name__, "status": cls.status, "code": cls.code, "children": [_node(c) for c in kids]}
