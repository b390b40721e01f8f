"""Sensors: YAML model, CEL environment, filters, conditions, parameters (not yet implemented)."""
