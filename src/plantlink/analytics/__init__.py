"""Pure computations over numpy arrays (no I/O, no services): statistical process control (``spc``,
``spc_rules``, ``capability``) and the control chart constants (``constants``)."""
