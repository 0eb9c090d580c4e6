"""VCSE digests: build them from new matches, deliver them over SMTP, take feedback and preferences.

The nightly job calls, in order (see README.md in this folder)::

    batch = build_digests(session, as_of=as_of, outbox=outbox)
    report = deliver(session, outbox, SmtpSettings(...), as_of=as_of,   # only when SMTP is configured
                     delivered=record_introduced_many)                  # introduced = delivered
    mark_sent(session, digest_ids, as_of=as_of, delivered=record_introduced_many)  # outbox only

No module here imports click or prints; errors are ``broker.errors.BrokerError`` subclasses.
"""

from broker.digest.build import DigestBatch, DigestInfo, Skipped, build_digests
from broker.digest.compose import DigestSettings
from broker.digest.deliver import DeliveryReport, SmtpSettings, deliver, parse_host_port
from broker.digest.feedback import record_feedback, resolve_reference
from broker.digest.preferences import clear_preferences, set_preferences, show_preferences
from broker.digest.safe_names import safe_name

__all__ = [
    "DeliveryReport", "DigestBatch", "DigestInfo", "DigestSettings", "Skipped", "SmtpSettings", "build_digests",
    "clear_preferences", "deliver", "parse_host_port", "record_feedback", "resolve_reference", "safe_name",
    "set_preferences", "show_preferences",
]
