"""Triggers: one module per kind behind a two-method interface (not yet implemented)."""
