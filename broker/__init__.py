"""broker: a procurement brokerage matcher for the West Midlands social economy clusters."""

__version__ = "0.1.0"
