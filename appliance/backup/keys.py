"""Backup-key generations: `backup/snapshot/<gen>` and `backup/log/<gen>` in the keyring.

New snapshots and segments use the newest generation. `rotate_backup_keys` starts a new one;
older backups stay readable with theirs until retention removes them, and
`pruning.prune_keys` then deletes the keys no backup uses any more (so a copy of an expired
backup made elsewhere becomes unreadable).
"""

from __future__ import annotations

from appliance.backup.format import log_key_name, snapshot_key_name
from appliance.storage.keyring import Keyring


def current_generation(keyring: Keyring) -> int:
    """The newest backup-key generation (creating the first); new snapshots and segments use it."""
    gens = [int(n.rsplit("/", 1)[1]) for n in keyring.names() if n.startswith("backup/log/")]
    gen = max(gens, default=0)
    while keyring.has(log_key_name(gen + 1)):  # `has` re-reads the file: a rotation by the CLI
        gen += 1
    if gen == 0:
        gen = 1
        keyring.create(snapshot_key_name(gen))
        keyring.create(log_key_name(gen))
    return gen


def rotate_backup_keys(keyring: Keyring) -> int:
    """Start a new generation of backup keys; older backups keep theirs until they expire."""
    gen = current_generation(keyring) + 1
    keyring.create(snapshot_key_name(gen))
    keyring.create(log_key_name(gen))
    return gen
