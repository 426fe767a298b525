"""Batches of catalogue row indices and bool masks (no tokenising or decoding here)."""
