"""The one place footfall pickles: models whose state is River objects persist as compressed pickles.

River models persist by pickling, so a store's forecasters and watches
(`pipeline.store_models.StoreModels`) are saved as one compressed pickle; the
saved value around it is `pipeline.persistence`'s versioned scheme. Only state
footfall wrote itself (its own changelog) is ever read: unpickling runs code.

Pickles name the modules of the classes inside them. A model saved before the
operators were grouped into families (`footfall.operators.forecasters`, ...) is
read through `LEGACY_MODULES`, which maps each old module to its new place.

Examples
--------
>>> from footfall.operators.kpis.flow import FlowCounts
>>> type(load(dump(FlowCounts()), FlowCounts)).__name__
'FlowCounts'

"""

from __future__ import annotations

import io
import pickle
import zlib
from typing import TypeVar

__all__ = ["LEGACY_MODULES", "dump", "load"]

T = TypeVar("T")

_FAMILIES = {
    "windows": ("buckets", "sliding", "rolling", "dedupe", "localtime"),
    "kpis": ("flow", "retail", "queues", "occupancy", "quantiles", "durations", "rollup"),
    "forecasting": ("forecasters", "forecast_select", "cold_start", "vertical_profiles", "store_forecast"),
    "alerting": ("detectors", "rules", "alerts", "watch"),
    "pipeline": ("store", "store_models"),
}

#: Module of a class in a pickle saved before the families -> its module now.
LEGACY_MODULES: dict[str, str] = {
    f"footfall.operators.{name}": f"footfall.operators.{family}.{name}"
    for family, names in _FAMILIES.items() for name in names
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        return super().find_class(LEGACY_MODULES.get(module, module), name)


def dump(model: object, level: int = 6) -> bytes:
    """A model, whole, as compressed bytes (`level`: zlib's, 1 fastest)."""
    return zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), level)


def load(blob: bytes, kind: type[T]) -> T:
    """A model saved by `dump` (by this version or one before the families), checked to be a `kind`."""
    model = _Unpickler(io.BytesIO(zlib.decompress(blob))).load()
    if not isinstance(model, kind):
        raise TypeError(f"not a saved {kind.__name__}: {type(model).__name__}")
    return model
