"""Offline, self-hosted Coassemble Embed backend."""

__version__ = "0.1.0"
