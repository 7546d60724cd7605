"""The retained, segmented log at the core of pull mode."""
