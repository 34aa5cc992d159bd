"""Backups of the nodes' chain data, restores that cannot make a validator double-sign, and restore drills.

``archive`` and ``crypto`` write and read the encrypted archives; ``safety`` holds the chain-safety rules
(quorum before stopping a validator, the signing-state floor); ``service`` (backup), ``restore`` and
``drill`` are the use cases; ``evidence`` records them in the audit log and reads them back for the
report, the runtime policies and the metrics; ``schedule`` reads ``spec.backup.schedule`` and runs it in
``hcops audit --watch``. The provider-side work (stopping a node, copying its volume) is behind
``backend.NodeBackend``: ``hcops/providers/docker/backup.py`` (Kubernetes: not yet).
"""
