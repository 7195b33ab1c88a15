"""Connectors: read (and later write) machines over industrial protocols. See ``base`` for the interface."""
