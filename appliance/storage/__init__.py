"""Encrypted storage: master key, keyring, SQLCipher databases, migrations."""
