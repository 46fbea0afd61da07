"""Routers of the service (one module each)."""
