"""Batch enrollment: the engine behind ``create_many`` and its pacers."""
