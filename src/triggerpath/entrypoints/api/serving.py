"""The app factory ``triggerpath serve`` hands to uvicorn (``factory=True``).

Each worker process (``--workers N``) and the development auto-reload child builds its own
app from the ``TRIGGERPATH_*`` environment: its own database engine and connection pool
(never shared across a fork), its own knowledge copy and CDS warm-up.
"""

from __future__ import annotations

from fastapi import FastAPI

from triggerpath.config import load_settings
from triggerpath.entrypoints.api.app import create_app

#: What uvicorn imports in every worker.
APP_FACTORY = "triggerpath.entrypoints.api.serving:app_from_environment"


def app_from_environment() -> FastAPI:
    """The service for the settings in the environment (validated: refuses weak secrets)."""
    return create_app(load_settings())
