"""plantlink: connect, monitor, control and exploit the data of brownfield plants."""

__version__ = "0.1.0"
