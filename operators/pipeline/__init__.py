"""One store's pipeline: its flow, its stages (forecasts and alerts first), and how its state is saved."""

from footfall.operators.pipeline import (
    forecast_stage,
    persistence,
    stage,
    store,
    store_models,
    store_pipeline,
)

__all__ = [
    "forecast_stage",
    "persistence",
    "stage",
    "store",
    "store_models",
    "store_pipeline",
]
