"""The error tree is pinned: any change to a class, its parent, its HTTP status or its code must change the
table below (and docs/errors.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from plantlink import errors
from plantlink.control.records import ControlRefused, Reason
from plantlink.errors import AccessDenied, AlarmActionError, NotFound, PlantlinkError, tree

#: class: (parent, status, code)
EXPECTED: dict[str, tuple[str | None, int, str]] = {
    "PlantlinkError": (None, 500, "internal"),
    "RequestError": ("PlantlinkError", 400, "bad_request"),
    "QueryError": ("RequestError", 400, "bad_query"),
    "ReasonError": ("RequestError", 400, "bad_reason"),
    "AuditError": ("RequestError", 400, "bad_request"),
    "InvalidValue": ("RequestError", 422, "invalid"),
    "AnalysisError": ("RequestError", 400, "bad_data"),
    "BaselineError": ("AnalysisError", 400, "bad_data"),
    "RULError": ("AnalysisError", 400, "bad_data"),
    "SubscriptionError": ("RequestError", 400, "bad_request"),
    "Unauthenticated": ("PlantlinkError", 401, "unauthenticated"),
    "AccessDenied": ("PlantlinkError", 403, "forbidden"),
    "NotFound": ("PlantlinkError", 404, "not_found"),
    "Conflict": ("PlantlinkError", 409, "conflict"),
    "AlarmActionError": ("Conflict", 409, "conflict"),
    "ControlRefused": ("Conflict", 409, "conflict"),
    "Unavailable": ("PlantlinkError", 503, "unavailable"),
    "ServerUnreachable": ("Unavailable", 503, "unavailable"),
    "DataDirInUse": ("Unavailable", 503, "unavailable"),
    "RemoteError": ("PlantlinkError", 500, "internal"),
    "ApiError": ("PlantlinkError", 500, "internal"),
    "ConfigError": ("PlantlinkError", 400, "bad_config"),
    "PluginError": ("PlantlinkError", 500, "internal"),
    "ConnectorError": ("PlantlinkError", 500, "internal"),
    "DeviceUnavailable": ("ConnectorError", 503, "unavailable"),
    "PointError": ("ConnectorError", 500, "internal"),
    "ConnectionLost": ("ConnectorError", 500, "internal"),
    "SecurityError": ("ConnectorError", 500, "internal"),
    "HistorianError": ("PlantlinkError", 500, "internal"),
    "StoreError": ("PlantlinkError", 500, "internal"),
    "StoreOpenError": ("StoreError", 500, "internal"),
    "StoreUnavailable": ("StoreOpenError", 503, "unavailable"),
    "AuthError": ("PlantlinkError", 500, "internal"),
    "AuthFailed": ("AuthError", 401, "bad_credentials"),
    "LockedOut": ("AuthError", 429, "locked"),
    "Busy": ("AuthError", 503, "busy"),
    "UserNotFound": ("AuthError", 404, "not_found"),
    "InvalidRequest": ("AuthError", 400, "bad_request"),
}


def _flatten(node: dict[str, Any], parent: str | None, out: dict[str, tuple[str | None, int, str]]) -> None:
    assert node["name"] not in out, f"{node['name']} twice in the tree"
    out[node["name"]] = (parent, node["status"], node["code"])
    for child in node["children"]:
        _flatten(child, node["name"], out)


def test_the_tree_is_pinned() -> None:
    got: dict[str, tuple[str | None, int, str]] = {}
    _flatten(tree(), None, got)
    assert got == EXPECTED


def test_every_class_of_the_errors_module_is_in_the_tree() -> None:
    mine = {n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, PlantlinkError)}
    assert mine <= set(EXPECTED)


@pytest.mark.parametrize(("reason", "status", "code", "field"), [
    (Reason.UNKNOWN_TAG, 404, "unknown_tag", "tag"),
    (Reason.UNKNOWN_STAGED, 404, "unknown_staged", "tag"),
    (Reason.ROLE, 403, "forbidden", "site"),
    (Reason.WRONG_USER, 403, "wrong_user", "tag"),
    (Reason.SELF_APPROVAL, 403, "self_approval", "tag"),
    (Reason.INVALID_VALUE, 422, "invalid_value", "tag"),
    (Reason.AUDIT_FAILED, 503, "audit_failed", "tag"),
    (Reason.NOT_WRITABLE, 409, "not_writable", "tag"),
    (Reason.INTERLOCK, 409, "interlock", "tag"),
])
def test_a_control_refusal_answers_by_its_reason(reason: Reason, status: int, code: str, field: str) -> None:
    exc = ControlRefused(reason, "why", "tag")
    assert (exc.status, exc.code, exc.field, exc.message) == (status, code, field, "why")
    assert str(exc) == f"{reason.value}: why"  # the text logs and the HMI have always shown


@pytest.mark.parametrize(("status", "code", "field"), [
    (409, "conflict", "alarm"), (404, "not_found", "alarm"), (403, "forbidden", "site"), (422, "invalid", "alarm"),
    (503, "unavailable", "alarm"),
])
def test_an_alarm_action_refusal_answers_by_its_status(status: int, code: str, field: str) -> None:
    exc = AlarmActionError("no", status, "a1")
    assert (exc.status, exc.code, exc.field, exc.alarm, str(exc)) == (status, code, field, "a1", "no")


def test_defaults_and_instance_fields() -> None:
    assert NotFound("no tag 'x'", "tag").field == "tag" and NotFound("x").field is None
    denied = AccessDenied("viewer rights at site 'detroit' are needed", "detroit")
    assert (denied.status, denied.code, denied.field, denied.site) == (403, "forbidden", "site", "detroit")
    assert PlantlinkError("boom").message == "boom" and PlantlinkError().status == 500


def test_docs_list_the_tree() -> None:
    """docs/errors.md has one table row per class: name, parent, status and code as the tree has them."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text("utf-8")
    rows = re.findall(r"^\| `(\w+)` \|\s*`?(\w*)`?\s*\| (\d+) \| `(\w+)` \|", text, re.M)
    documented = {name: (parent or None, int(status), code) for name, parent, status, code in rows}
    assert documented == EXPECTED
