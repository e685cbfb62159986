"""The operator's console: administrators (accounts), their sessions, the first-run setup link, and
the web console under /admin/ (`console/`, the HTTP layer)."""
