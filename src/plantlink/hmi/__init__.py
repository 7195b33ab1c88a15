"""The browser HMI (NiceGUI): plant overview, line and machine pages, live, on the API's FastAPI app.

``mount_hmi(app, runtime)`` serves it under ``/hmi``. See docs/hmi.md.
"""

from plantlink.hmi.mount import DEFAULT_MOUNT, mount_hmi

__all__ = ["DEFAULT_MOUNT", "mount_hmi"]
