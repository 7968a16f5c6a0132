"""Fingerprints per media type: pure functions from decoded media to compact packed values."""
