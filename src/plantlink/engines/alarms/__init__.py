"""Alarms per ISA-18.2: vectorised conditions, the alarm state machine, journal, performance (EEMUA 191)."""

from plantlink.engines.alarms.engine import AlarmEngine, AlarmEvent, AlarmView
from plantlink.errors import AlarmActionError

__all__ = ["AlarmActionError", "AlarmEngine", "AlarmEvent", "AlarmView"]
