"""Computation engines: shift calendars, machine states, production counters, OEE, downtime and costs."""
