"""Pure computations over a machine's data (no runtime, no store): anomaly detection, remaining useful life, ..."""
