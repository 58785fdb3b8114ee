"""footfall's tests."""

from pathlib import Path

#: The real data sets: `../shared/data` beside the repository (each folder has a SOURCE.txt).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
