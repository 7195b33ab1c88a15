"""The safe control path: interlock expressions and the stage / approve / confirm / verify write path.

Modules: ``grammar`` (tokenizer + parser of interlock expressions), ``interlock`` (type check against the
plant, fail-closed evaluation), ``check`` (``control_problems`` for the plant loader), ``live`` (usable live
values), ``service`` (``ControlService``), ``records`` (Staged, Outcome, Reason). What it records goes to an
``AuditSink`` (``plantlink.audit.sink``). See docs/control.md.

This package's ``__init__`` imports nothing: ``plantlink.model`` imports ``plantlink.control.grammar``.
"""
