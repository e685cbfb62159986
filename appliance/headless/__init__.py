"""The Coassemble-compatible headless API, served under /api/v1/headless and /v1/headless."""
