"""The built-in workflow scheduler: models, expressions, operator, executors, sync, store."""
