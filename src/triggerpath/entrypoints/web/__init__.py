"""The clinician web app (server-rendered, under ``/app``), mounted by ``create_app``.

``router`` holds every page; templates and static files ship as package data.
"""

from __future__ import annotations

from triggerpath.entrypoints.web.routes import router

__all__ = ["router"]
