"""Signed release bundles and the offline upgrade that installs them (docs/operations.md, Upgrades).

- `signing`  Ed25519 key pairs, the release keys this build trusts (`trusted/*.pub`), signatures
- `bundle`   the bundle format: build one, and verify one (signature, checksums, members) into a
             private staging directory before anything is touched
- `upgrade`  `appliance upgrade`: verify, channel and version policy, snapshot, swap, migrations
             and /health in a trial server, roll back (previous binary and restore) on failure
"""
