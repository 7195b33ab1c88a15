"""Pure computations over numpy arrays and a machine's data (no I/O, no runtime, no store: the services feed
them from the historian): statistical process control (``spc``, ``spc_rules``, ``capability``) and the control
chart constants (``constants``); anomaly detection (``anomaly``, ``iforest``, ``baseline``); remaining useful
life (``rul``)."""
