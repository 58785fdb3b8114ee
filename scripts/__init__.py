"""footfall scripts."""
