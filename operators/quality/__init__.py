"""Data quality of a store's sensors: who they are, how much of each bucket their reports cover, a grade.

So that a dashboard never reads a silent door counter as an empty store
(`operators/pipeline/quality_stage.py` puts these together per store and closed bucket):

  intervals   the time one sensor's reports cover, merged, for the time not yet handed out
  sensors     the sensors a store has: heard from within the last week, bounded
  grade       a bucket's quality in one word (ok, partial, missing, no_sensors), its door imbalance
  uptime      each sensor's covered share of a local day (23 to 25 hours)
"""

from footfall.operators.quality import grade, intervals, sensors, uptime

__all__ = ["grade", "intervals", "sensors", "uptime"]
