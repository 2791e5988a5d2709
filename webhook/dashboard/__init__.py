"""The live dashboard served at ``/``: fleet, devices, the fleet's hourly mix, live updates."""

from .routes import install, require_viewer, start

__all__ = ["install", "require_viewer", "start"]
