"""The functional core: typed inputs, pure decisions, typed results with reasons."""
