"""Alembic migrations, shipped inside the package so ``triggerpath db upgrade`` works from
an install. Run them with :func:`triggerpath.adapters.database.upgrade`."""
