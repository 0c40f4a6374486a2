"""How a validation split is carved from a training file: the names and thresholds that the run config
(handsign.train.config), the readers (handsign.data.readers) and the near-copy groups (handsign.data.groups)
share. Plain constants, no torch: the config and `handsign --help` import this file.
"""

from __future__ import annotations

VALID_SPLITS = ("random", "groups")  # handsign.data.groups explains "groups"
# --valid-split groups: cosine similarity above which two images are near-copies (handsign.data.groups says why
# 0.99), and the threshold of grouped runs saved before it was a config field
GROUP_SIMILARITY = 0.99
LEGACY_GROUP_SIMILARITY = 0.95


def saved_group_similarity(saved: dict) -> float:
    """The grouped split's threshold of a saved run config (a config.json dict): its own, or, for a grouped run
    saved before the field existed, the threshold it was split at then."""
    legacy = saved.get("valid_split") == "groups"
    return saved.get("group_similarity", LEGACY_GROUP_SIMILARITY if legacy else GROUP_SIMILARITY)
