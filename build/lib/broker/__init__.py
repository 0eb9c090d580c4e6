"""broker: a procurement brokerage matcher for the West Midlands social economy clusters."""

__version__ = "0.1.0"

import logging

# Library code logs; only the CLI decides where warnings go (see broker.cli.main).
logging.getLogger("broker").addHandler(logging.NullHandler())
