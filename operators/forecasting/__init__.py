"""Forecasters, online model selection, the cold-start profiles and a store's forecasts per series."""

from footfall.operators.forecasting import (
    cold_start,
    forecast_select,
    forecasters,
    store_forecast,
    vertical_profiles,
)

__all__ = [
    "cold_start",
    "forecast_select",
    "forecasters",
    "store_forecast",
    "vertical_profiles",
]
