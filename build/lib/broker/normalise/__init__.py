"""Normalisation: every source's records become one canonical :class:`OpportunityRecord`."""

from broker.normalise.record import OpportunityRecord

__all__ = ["OpportunityRecord"]
