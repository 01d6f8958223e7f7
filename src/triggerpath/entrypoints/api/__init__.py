"""The REST API (FastAPI, OpenAPI 3): ``create_app(settings)``."""

from triggerpath.entrypoints.api.app import create_app, default_routers

__all__ = ["create_app", "default_routers"]
