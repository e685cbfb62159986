"""API keys, the audit log and (later) embed tokens."""
