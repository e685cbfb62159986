"""Point-in-time recovery: encrypted snapshots plus an append-only, encrypted change log.

Covered: `control.db` and every workspace environment database. Not covered (never rolled back):
the audit log, the keyring, the key store (`keystore.db`: subject keys and the erasure ledger) and
the object files.

One module per job; each is handed a `targets.Backups` (built by the application: the databases,
the keyring, the backup root, the settings) and imports nothing above `appliance.storage`:

- `targets`    what is covered, what the layer is handed, the backup lock
- `format`     the on-disk layout: snapshot names, log segments and records
- `keys`       backup-key generations
- `snapshots`  consistent encrypted copies
- `shipping`   `_changes` rows into the log (what is durable when)
- `restore`    a database, or a whole data directory, as it was at a time (what a restore guarantees)
- `ledger`     the erasure ledger every restore re-applies
- `erasure`    hard deletion of a subject everywhere: live database, log, snapshots, files
- `pruning`    retention: old snapshots, segments and keys
- `verify`     `backup list` and `backup verify`
- `service`    the server's shipper thread
"""
