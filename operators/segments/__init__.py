"""Customer segments learned online: features, k-means seeding, stable segment ids, the ARI."""

from footfall.operators.segments.ari import adjusted_rand_index
from footfall.operators.segments.batch import kmeans, kmeans_plus_plus
from footfall.operators.segments.features import (
    TILL_FEATURES,
    VISIT_FEATURES,
    Centre,
    centre_of,
    describe,
    till_features,
    visit_features,
)
from footfall.operators.segments.matching import match_ids
from footfall.operators.segments.online import OnlineSegments

__all__ = [
    "TILL_FEATURES",
    "VISIT_FEATURES",
    "Centre",
    "OnlineSegments",
    "adjusted_rand_index",
    "centre_of",
    "describe",
    "kmeans",
    "kmeans_plus_plus",
    "match_ids",
    "till_features",
    "visit_features",
]
