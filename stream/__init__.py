"""footfall stream."""
