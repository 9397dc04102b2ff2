"""Where a server listens by default: what both ``serve`` and the health probe need, in a module that imports
nothing (the probe runs every few seconds in every replica and must start fast)."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50051
