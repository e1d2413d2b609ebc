"""The detection benchmark: a seeded generator of Japanese brokerage login histories with labelled
account-takeover attempts, its own GeoIP databases, baseline B0, and the scorer of a replay's output.

Run it with ``python -m bench.detection``; ``docs/benchmarks-detection.md`` describes the model and the
metrics.
"""

from .generator import ATTACK_CLASSES, CONTRACT_KEYS, LABEL_KEYS, Config, Generator
from .scorer import roc_auc, score_run, threshold_for_friction

__all__ = [
    "ATTACK_CLASSES",
    "CONTRACT_KEYS",
    "LABEL_KEYS",
    "Config",
    "Generator",
    "roc_auc",
    "score_run",
    "threshold_for_friction",
]
