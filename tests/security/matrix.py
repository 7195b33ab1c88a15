"""The authorization matrix, written down on its own (not read from the code): for every route of the served
application, who may call it. ``test_matrix.py`` checks the served app against it route by route and user by
user; docs/security.md carries it as a table (``render_table``; a test keeps the two equal).

``role``: ``public`` (no login), ``user`` (any logged-in user), ``viewer`` / ``operator`` / ``engineer`` /
``admin`` (at least that role at the site concerned), ``admin*`` / ``engineer*`` (that role at every site).
``site``: ``-`` (not about a site), ``object`` (the request names a site's object: a user of another site is
refused, 403 for a path, 404 for an id), ``filtered`` (the answer only holds the caller's sites).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    role: str
    site: str
    note: str = ""


ROUTES: dict[str, Rule] = {
    # public
    "GET /healthz": Rule("public", "-", "liveness"),
    "GET /login": Rule("public", "-", "login page"),
    "POST /login": Rule("public", "-", "login form (same origin)"),
    "POST /api/v1/auth/login": Rule("public", "-", "throttled per user and address, bounded pool"),
    # any logged-in user
    "GET /openapi.json": Rule("user", "-"),
    "GET /docs": Rule("user", "-"),
    "GET /docs/oauth2-redirect": Rule("user", "-"),
    "GET /api/v1/auth/me": Rule("user", "-", "no hashes, CSRF token of the session"),
    "POST /api/v1/auth/logout": Rule("user", "-"),
    "GET /logout": Rule("user", "-", "asks; a session only"),
    "POST /logout": Rule("user", "-", "form with the session's CSRF token"),
    "GET /account/password": Rule("user", "-", "a session only"),
    "POST /account/password": Rule("user", "-", "current password checked like a login"),
    # plant reads
    "GET /api/v1/hierarchy": Rule("viewer", "filtered"),
    "GET /api/v1/overview": Rule("viewer", "filtered"),
    "GET /api/v1/tags": Rule("viewer", "filtered"),
    "GET /api/v1/tags/{ref:path}": Rule("viewer", "object", "tag path or id"),
    "GET /api/v1/values": Rule("viewer", "object"),
    "GET /api/v1/history/raw": Rule("viewer", "object"),
    "GET /api/v1/history/aggregate": Rule("viewer", "object"),
    "GET /api/v1/history/downsample": Rule("viewer", "object"),
    "GET /api/v1/spc/{ref:path}": Rule("viewer", "object", "tag path or id; 400 without data"),
    "GET /api/v1/anomaly": Rule("viewer", "filtered", "machines with a detector"),
    "GET /api/v1/anomaly/{machine:path}": Rule("viewer", "object", "machine path"),
    "GET /api/v1/anomaly/{machine:path}/scores": Rule("viewer", "object", "machine path"),
    "POST /api/v1/anomaly/{machine:path}/train": Rule("engineer", "object", "audited; 400 without a baseline"),
    "GET /api/v1/rul/{machine:path}": Rule("viewer", "object", "machine path"),
    "GET /api/v1/states": Rule("viewer", "object", "site="),
    "GET /api/v1/states/timeline": Rule("viewer", "object"),
    "GET /api/v1/oee": Rule("viewer", "object"),
    "GET /api/v1/oee/shifts": Rule("viewer", "object"),
    "GET /api/v1/energy": Rule("viewer", "object"),
    "GET /api/v1/downtime": Rule("viewer", "object", "site="),
    "GET /api/v1/downtime/pareto": Rule("viewer", "object"),
    "GET /api/v1/downtime/{event_id}": Rule("viewer", "object", "by id: 404 elsewhere"),
    "GET /api/v1/lines/bottleneck": Rule("viewer", "object"),
    "GET /api/v1/lines/costs": Rule("viewer", "object"),
    "GET /api/v1/lines/reasons": Rule("viewer", "object"),
    "WS /api/v1/stream": Rule("viewer", "filtered", "subscriptions per site"),
    "GET /api/v1/health": Rule("viewer", "any", "devices of the caller's sites"),
    "GET /api/v1/alarms": Rule("viewer", "object", "site="),
    "GET /api/v1/alarms/history": Rule("viewer", "object", "site="),
    "GET /api/v1/alarms/performance": Rule("viewer", "object", "site="),
    "GET /api/v1/alarms/notifications/failed": Rule("viewer", "object", "site="),
    # exports: whoever may view the figures may export them (streamed, audited)
    "GET /api/v1/export/trend": Rule("viewer", "object", "tags of one site"),
    "GET /api/v1/export/oee": Rule("viewer", "object", "scope="),
    "GET /api/v1/export/energy": Rule("viewer", "object", "scope="),
    "GET /api/v1/export/downtime": Rule("viewer", "object", "site=, line= or machine="),
    "GET /api/v1/export/pareto": Rule("viewer", "object", "line= or site="),
    "GET /api/v1/reports": Rule("viewer", "object", "scope=; HTML or PDF, audited"),
    # actions
    "PUT /api/v1/downtime/{event_id}/reason": Rule("operator", "object", "by id: 404 elsewhere"),
    "POST /api/v1/alarms/ack": Rule("operator", "object"),
    "POST /api/v1/alarms/shelve": Rule("operator", "object"),
    "POST /api/v1/alarms/unshelve": Rule("operator", "object"),
    "POST /api/v1/alarms/out-of-service": Rule("operator", "object"),
    "POST /api/v1/control/stage": Rule("operator", "object", "or the tag's control role"),
    "POST /api/v1/control/confirm": Rule("operator", "object", "own staged write only"),
    "POST /api/v1/control/approve": Rule("engineer", "object", "the tag's role; not the stager"),
    "POST /api/v1/control/reject": Rule("engineer", "object", "the tag's role; not the stager"),
    "GET /api/v1/control/pending": Rule("operator", "filtered", "others get an empty list"),
    "GET /api/v1/control/sites": Rule("user", "filtered"),
    "POST /api/v1/control/sites/{site}/disable": Rule("admin", "object"),
    "POST /api/v1/control/sites/{site}/enable": Rule("admin", "object"),
    # trends: notes on a machine's trend and saved trend views
    "GET /api/v1/trends/annotations": Rule("viewer", "object", "machine="),
    "POST /api/v1/trends/annotations": Rule("operator", "object", "audited"),
    "DELETE /api/v1/trends/annotations/{annotation_id}": Rule("operator", "object",
                                                               "own note, or admin; by id: 404 elsewhere"),
    "GET /api/v1/trends/views": Rule("viewer", "object", "machine=; own and shared at the site"),
    "POST /api/v1/trends/views": Rule("viewer", "object", "own view; shared: operator"),
    "GET /api/v1/trends/views/{view_id}": Rule("viewer", "object", "own or shared; by id: 404 elsewhere"),
    "DELETE /api/v1/trends/views/{view_id}": Rule("viewer", "object", "own view, or admin; by id: 404 elsewhere"),
    # audit
    "GET /api/v1/audit": Rule("admin", "object", "site=, or admin* for all"),
    "GET /api/v1/audit/export.csv": Rule("admin", "object", "site=, or admin* for all"),
    "GET /api/v1/audit/verify": Rule("admin*", "-"),
    # read-only SQL over the historian: reads every site, so only for an admin of every site (audited)
    "POST /api/v1/sql": Rule("admin*", "-", "one SELECT; row and time limits; audited"),
    # the plant model: its digest; plan and apply a changed one (every site it covers)
    "GET /api/v1/model": Rule("user", "-", "digest and counts"),
    "POST /api/v1/model/plan": Rule("engineer*", "-", "at every site of both models"),
    "POST /api/v1/model/apply": Rule("engineer*", "-", "at every site of both models; audited"),
    # HMI (NiceGUI); {v} is the NiceGUI version
    "GET /": Rule("user", "-", "redirect to /hmi/"),
    "GET /hmi/": Rule("user", "filtered"),
    "GET /hmi/alarms": Rule("user", "-", "lists only the caller's sites' alarms"),
    "GET /hmi/approvals": Rule("user", "-", "lists only the writes the caller may approve"),
    "GET /hmi/audit": Rule("admin", "any", "admin at any site; shows that site's records"),
    "GET /hmi/users": Rule("admin*", "-", "users and API tokens"),
    "GET /hmi/model": Rule("engineer*", "-", "plan and apply a changed plant model (through the model service)"),
    "GET /hmi/system": Rule("user", "-", "the health report of the caller's sites only (none: says so)"),
    "GET /hmi/line/{path:path}": Rule("viewer", "object"),
    "GET /hmi/machine/{path:path}": Rule("viewer", "object"),
    "GET /hmi/oee": Rule("viewer", "object", "scope="),
    "GET /hmi/spc/{path:path}": Rule("viewer", "object", "tag path"),
    "GET /hmi/favicon.ico": Rule("user", "-"),
    "MOUNT /hmi/_nicegui_ws": Rule("user", "-", "socket.io"),
    "MOUNT /hmi/_nicegui/{v}/static": Rule("user", "-", "package files"),
    "GET /hmi/_plantlink/tailwind-{hash}.css": Rule("user", "-", "package files"),
    "GET /hmi/_nicegui/{v}/libraries/{key:path}": Rule("user", "-", "package files"),
    "GET /hmi/_nicegui/{v}/components/{key:path}": Rule("user", "-", "package files"),
    "GET /hmi/_nicegui/{v}/resources/{key}/{path:path}": Rule("user", "-", "package files"),
    "GET /hmi/_nicegui/{v}/dynamic_resources/{name}": Rule("user", "-"),
    "GET /hmi/_nicegui/{v}/esm/{key}/{path:path}": Rule("user", "-", "package files"),
    # shop floor (wallboards reach display tokens too: see test_display_tokens.py; handover notes)
    "GET /hmi/wall/{path:path}": Rule("viewer", "object", "also a display token of the line or site"),
    "GET /api/v1/lines/handover": Rule("viewer", "object"),
    "POST /api/v1/lines/handover": Rule("operator", "object", "append-only, audited"),
}

RANK = {"viewer": 0, "operator": 1, "engineer": 2, "admin": 3}


def allowed(rule: Rule, roles: dict[str, str], site: str = "windsor") -> bool:
    """Whether a user with ``roles`` may call the route for an object of ``site`` (for ``filtered`` routes:
    whether ``site`` shows in the answer)."""
    if rule.role == "public":
        return True
    if rule.role.endswith("*"):  # the role at every site
        every = roles.get("*")
        return every is not None and RANK[every] >= RANK[rule.role[:-1]]
    if rule.site == "any":  # the role at any one site opens the page; it shows only those sites
        return any(RANK[r] >= RANK[rule.role] for r in roles.values())
    have = roles.get(site) or roles.get("*")
    if rule.role == "user":
        return rule.site != "filtered" or have is not None
    return have is not None and RANK[have] >= RANK[rule.role]


#: the users of the matrix: (column title, roles)
COLUMNS: list[tuple[str, str, dict[str, str]]] = [
    (f"{role} W", f"t-windsor-{role}", {"windsor": role}) for role in RANK
] + [
    (f"{role} D", f"t-detroit-{role}", {"detroit": role}) for role in RANK
] + [("admin *", "admin", {"*": "admin"})]


def render_table() -> str:
    """The matrix as a Markdown table: one row per route, one column per user (W = a windsor user acting on
    windsor, D = a detroit user acting on windsor objects, * = admin everywhere)."""
    head = ["route", "min. role", "site"] + [title for title, _, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for route, rule in ROUTES.items():
        cells = [f"`{route}`", rule.role, rule.site]
        cells += ["yes" if allowed(rule, roles) else "no" for _, _, roles in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
