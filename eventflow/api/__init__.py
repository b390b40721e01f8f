"""The HTTP API: Argo Server REST paths and eventflow's own resources."""
