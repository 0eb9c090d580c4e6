"""Measuring matching quality on the labelled set (fixtures/labelled)."""
