"""App assembly, middleware, health, metrics and the HTTP(S) server."""
