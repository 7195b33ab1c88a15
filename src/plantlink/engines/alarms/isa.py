"""The ISA-18.2 alarm state machine, as pure functions on state names.

States: ``normal``; ``unack_active`` (unacknowledged active); ``ack_active`` (acknowledged active);
``rtn_unack`` (returned to normal unacknowledged); ``latched`` (a latched alarm whose condition cleared,
waiting for an operator reset); ``shelved``; ``suppressed`` (by design); ``out_of_service``.

The process condition (after on/off delays) is tracked in every state; in the last three it changes nothing
visible, and leaving them puts the alarm in ``unack_active`` if the condition is present, else ``normal``.
Precedence when several apply: out of service > shelved > suppressed by design.
"""

from __future__ import annotations

from plantlink.errors import AlarmActionError

NORMAL = "normal"
UNACK = "unack_active"
ACKED = "ack_active"
RTN_UNACK = "rtn_unack"
LATCHED = "latched"
SHELVED = "shelved"
SUPPRESSED = "suppressed"
OOS = "out_of_service"

STATES: tuple[str, ...] = (NORMAL, UNACK, ACKED, RTN_UNACK, LATCHED, SHELVED, SUPPRESSED, OOS)
#: States shown to the operator (in the alarm list) and counted as alarms.
ANNUNCIATED = frozenset({UNACK, ACKED, RTN_UNACK, LATCHED})
#: States that hide the alarm from the operator.
HIDDEN = frozenset({SHELVED, SUPPRESSED, OOS})
UNACKNOWLEDGED = frozenset({UNACK, RTN_UNACK, LATCHED})


def on_condition(state: str, active: bool, latched: bool) -> tuple[str, str] | None:
    """The (new state, event) when the process condition becomes ``active`` (or clears); None: no change."""
    if state in HIDDEN:
        return None
    if active:
        return (UNACK, "activate") if state in (NORMAL, RTN_UNACK, LATCHED) else None
    if state == UNACK:
        return (LATCHED if latched else RTN_UNACK), "clear"
    if state == ACKED:
        return (LATCHED if latched else NORMAL), "clear"
    return None


def on_ack(state: str, active: bool, alarm: str = "") -> str:
    """The state after an operator acknowledges (or resets a latched alarm)."""
    if state == UNACK:
        return ACKED
    if state == RTN_UNACK:
        return NORMAL
    if state == LATCHED:
        return ACKED if active else NORMAL
    if state == ACKED:
        raise AlarmActionError(f"alarm {alarm} is already acknowledged", 409, alarm)
    raise AlarmActionError(f"alarm {alarm} is {state}: nothing to acknowledge", 409, alarm)


def released(active: bool, suppressed: bool) -> tuple[str, str]:
    """The (state, event) of an alarm leaving shelved / out of service / suppressed."""
    if suppressed:
        return SUPPRESSED, "suppress"
    return (UNACK, "activate") if active else (NORMAL, "return")
