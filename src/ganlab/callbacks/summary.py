"""Callbacks that add to a run's ``summary.json``."""

from __future__ import annotations

from typing import Any


class SummaryPart:
    """A callback that contributes entries to the run summary (health flags, metric
    provenance, the stop signal, ...)."""

    def summary(self, module: Any) -> dict[str, Any]:
        """Entries for the run summary, given the finished ``GANModule``."""
        return {}
