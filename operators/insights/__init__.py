"""A store's traffic in perspective: weekday-by-hour heatmaps, day-over-day comparisons, weekly tests."""

from footfall.operators.insights import daily, heatmap, significance, weekly

__all__ = ["daily", "heatmap", "significance", "weekly"]
