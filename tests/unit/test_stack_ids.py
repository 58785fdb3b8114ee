"""The local stack's Kafka cluster ids: what Kafka's own `Uuid.randomUuid()` would accept on a command line."""

from __future__ import annotations

import base64

from footfall.scripts.stack import _kafka_cluster_id


def test_cluster_ids_are_16_bytes_of_url_safe_base64_never_starting_with_a_dash():
    # One in 64 raw draws starts with "-"; 5,000 draws miss none of that unless the tool redraws.
    ids = [_kafka_cluster_id() for _ in range(5_000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 and len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
