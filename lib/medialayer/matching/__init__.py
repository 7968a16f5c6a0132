"""Matchers: pure functions of two fingerprints (or two batches of them) to envelopes."""
