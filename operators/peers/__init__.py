"""Comparable stores: hour-of-week profiles, peer groups by their shape, and each store's day against its peers."""

from footfall.operators.peers import (
    agreement,
    chain,
    compare,
    describe,
    grouping,
    peer_groups,
    profile,
)

__all__ = [
    "agreement",
    "chain",
    "compare",
    "describe",
    "grouping",
    "peer_groups",
    "profile",
]
