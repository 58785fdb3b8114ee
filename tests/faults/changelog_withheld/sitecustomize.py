"""Loaded by a worker started with this folder on PYTHONPATH: Faust's consumer never delivers changelog records.

The state a stalled faust-streaming 0.15.3 table recovery is in (its fetcher gives the
recovery nothing while the changelog holds records), made on purpose, so that the fault
test can show the worker gets out of it (tests/faults/test_recovery_stall.py). The broker,
the worker and its own reads from Kafka stay real: only what Faust's fetcher hands on is cut.
"""

from __future__ import annotations

import faust.transport.drivers.aiokafka as faust_aiokafka

_fetch_records = faust_aiokafka.AIOKafkaConsumerThread._fetch_records


async def _fetch_records_withholding_changelogs(self, consumer, active_partitions, timeout=None, max_records=None):
    records = await _fetch_records(self, consumer, active_partitions, timeout=timeout, max_records=max_records)
    return {tp: batch for tp, batch in records.items() if not tp.topic.endswith("-changelog")}


faust_aiokafka.AIOKafkaConsumerThread._fetch_records = _fetch_records_withholding_changelogs
