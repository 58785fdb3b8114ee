"""footfall operators."""
