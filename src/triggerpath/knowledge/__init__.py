"""Clinical knowledge as versioned, schema-validated data."""

from triggerpath.knowledge.loader import Knowledge, load_knowledge

__all__ = ["Knowledge", "load_knowledge"]
