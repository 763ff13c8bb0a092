"""Thin DVC stage entry points: ``python -m pipeline.<stage>``. Nothing imports this package."""
