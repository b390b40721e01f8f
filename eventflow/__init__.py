"""eventflow composition root: config, CLI, HTTP app, process roles. Nothing imports this package."""
