"""Synthetic test and benchmark material made from real photographs: seller-style edits, shipped photos."""
