"""Counting brokered value toward the programme's £1m target: ledger, outcomes, progress, HTML report.

The entry points the pipeline calls (each idempotent for the same cause; dates come from ``as_of``):

- :func:`record_matches` after a match run,
- :func:`record_introduced` / :func:`record_introduced_many` when a digest sends matches,
- :func:`record_outcome` for an officer's outcome,
- :func:`reconcile_values` nightly, for value changes, cancellations and framework flags,

and :func:`compute_progress` (with :func:`progress_json`) or ``broker.target.report.render_report`` to
read the figure.
"""

from broker.target.config import DEFAULT_CONFIG, TargetConfig, load_config
from broker.target.ledger import (
    reconcile_values,
    record_introduced,
    record_introduced_many,
    record_matches,
    record_outcome,
)
from broker.target.progress import Progress, compute_progress, progress_json

__all__ = ["DEFAULT_CONFIG", "Progress", "TargetConfig", "compute_progress", "load_config", "progress_json",
           "record_introduced", "record_introduced_many", "record_matches", "record_outcome",
           "reconcile_values"]
