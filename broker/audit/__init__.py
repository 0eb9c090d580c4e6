"""Audit: run manifests, input snapshots, replay, the tamper-evident chain, export and import."""
