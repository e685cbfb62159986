"""Workspaces: each has a test and a production environment, API keys and entitlement flags."""
