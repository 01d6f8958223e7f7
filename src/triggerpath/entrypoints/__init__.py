"""Adapters that people and systems call: CLI, API, web."""
