"""A plan (``plantlink.model.diff.Plan.to_dict()``, as the API answers it) as text, like a Terraform plan.

``render(plan, color=False)``: plain text (tests, logs, the audit); ``color=True`` adds rich markup (``+`` green,
``~`` yellow, ``-`` and history loss red) for the terminal. Values are shown as JSON.
"""

from __future__ import annotations

import json
from typing import Any

_SIGN = {"add": "+", "change": "~", "remove": "-", "rename": ">"}
_STYLE = {"add": "green", "change": "yellow", "remove": "red", "rename": "cyan"}
_KIND_ORDER = ("device", "tag", "alarm", "machine", "line", "site", "model")


def _value(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)


def _paint(text: str, style: str, color: bool) -> str:
    if not color:
        return text
    return f"[{style}]{text.replace('[', chr(92) + '[')}[/{style}]"


def _esc(text: str, color: bool) -> str:
    return text.replace("[", "\\[") if color else text


def _change_lines(c: dict[str, Any], color: bool) -> list[str]:
    head = f"  {_SIGN[c['action']]} {c['kind']} {c['path']}"
    if c.get("was"):
        head += f" (was {c['was']})"
    out = [_paint(head, _STYLE[c["action"]], color)]
    for f in c["fields"]:
        if c["action"] == "add":
            out.append(_esc(f"      {f['field']}: {_value(f['new'])}", color))
        else:
            out.append(_esc(f"      {f['field']}: {_value(f['old'])} -> {_value(f['new'])}", color))
    if c.get("history"):
        line = f"      history: {c['history']}"
        if c.get("loses_history"):
            out.append(_paint(f"      history: LOST: {c['history']}", "bold red", color))
        else:
            out.append(_esc(line, color))
    if c.get("effect"):
        out.append(_esc(f"      effect: {c['effect']}", color))
    return out


def render(plan: dict[str, Any], color: bool = False, allow_history_loss: bool = False) -> str:
    """The plan as lines of text, grouped by kind, then a summary line (and the history-loss warning)."""
    changes = plan["changes"]
    if not changes:
        return f"No changes: the model matches the running one ({plan['digest_after']}).\n"
    lines = [f"Running model {plan['digest_before']}", f"New model     {plan['digest_after']}", ""]
    for kind in _KIND_ORDER:
        of_kind = [c for c in changes if c["kind"] == kind]
        if of_kind:
            lines.append(f"{kind}s:")
            for c in of_kind:
                lines.extend(_change_lines(c, color))
            lines.append("")
    n = plan["counts"]
    lines.append(f"Plan: {n['add']} to add, {n['change']} to change, {n['rename']} to rename, "
                 f"{n['remove']} to remove.")
    if plan["devices"]:
        lines.append("Connectors starting, stopping or restarting: " + ", ".join(plan["devices"])
                     + " (the other devices keep streaming).")
    lost = plan["history_loss"]
    if lost:
        how = "allowed by --allow-history-loss" if allow_history_loss else \
            "apply refuses this without --allow-history-loss"
        lines.append(_paint(f"History loss: {len(lost)} tag(s) with samples would no longer be reachable: "
                            f"{', '.join(lost)} ({how}).", "bold red", color))
    return "\n".join(lines) + "\n"
