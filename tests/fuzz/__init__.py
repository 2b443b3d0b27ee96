"""Bounded fuzzing runs (marker: fuzz)."""
