"""Signed one-click links in digests: Interested, Not relevant and Stop these emails.

A link's token is an HMAC-signed (itsdangerous) list ``[action, subject, party tag, expiry]``:

* ``action`` is ``interested`` or ``not_relevant`` (subject: the item's reference code) or ``stop``
  (subject: the digest id);
* the party tag is a hash of the party the item is about (the recipient for ``stop``), so a token is
  bound to one party, one opportunity and one action, and reveals no internal id;
* the expiry is the digest's business date plus a configured number of days, never the wall clock,
  so the same digest payload always carries the same links and re-renders byte for byte.

Keys are derived per purpose from one configured secret, so a link token can never pass as a session
cookie or a form token and the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from broker.errors import BrokerError, ConfigError

ITEM_ACTIONS = ("interested", "not_relevant")
ACTIONS = ITEM_ACTIONS + ("stop",)
MIN_SECRET_CHARS = 32
MAX_DAYS = 366


class BadToken(BrokerError):
    """A link whose signature does not verify, or that does not name what it claims (shown as 404)."""


class ExpiredToken(BrokerError):
    """A genuine link past its expiry date (shown as 410 Gone with a way to reply instead)."""


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose (``links``, ``session``, ``csrf``), derived from the configured secret."""
    return hmac.new(secret.encode("utf-8"), b"broker/" + purpose.encode("ascii"), hashlib.sha256).digest()


def party_tag(party_id: str) -> str:
    """A short, stable stand-in for a party id inside a token (the id itself never leaves the database)."""
    return hashlib.sha256(party_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class LinkToken:
    """What a verified token says."""

    action: str
    subject: str  # an item reference (interested / not_relevant) or a digest id (stop)
    party: str  # party_tag(...) of the party it is about
    expires: date

    def matches_party(self, party_id: str) -> bool:
        """Constant-time check that the token was made for this party."""
        return hmac.compare_digest(self.party, party_tag(party_id))


@dataclass(frozen=True)
class LinkSettings:
    """Where the links point and how they are signed. ``secret`` is never shown or stored."""

    base_url: str
    secret: str = field(repr=False)
    days: int = 30

    def validate(self) -> None:
        """Raise ``ConfigError`` for a base URL that is not plain http(s), a short secret or odd days."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment \
                or any(c in self.base_url for c in "<>\"' \r\n\t"):
            raise ConfigError(f"the base URL {self.base_url!r} must look like https://broker.example.org")
        if len(self.secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"the signing secret must be at least {MIN_SECRET_CHARS} characters "
                              "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        if not 1 <= self.days <= MAX_DAYS:
            raise ConfigError(f"link validity must be 1..{MAX_DAYS} days, got {self.days}")

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    def signer(self) -> LinkSigner:
        return LinkSigner(self.secret)

    def expiry(self, as_of: date) -> date:
        return as_of + timedelta(days=self.days)

    def item_links(self, reference: str, party_id: str, as_of: date) -> dict[str, str]:
        """The Interested and Not relevant URLs for one digest item."""
        signer, expires = self.signer(), self.expiry(as_of)
        return {a: f"{self.root}/f/{signer.dumps(a, reference, party_id, expires)}" for a in ITEM_ACTIONS}

    def stop_link(self, digest_id: str, recipient_id: str, as_of: date) -> str:
        """The Stop these emails URL (also the List-Unsubscribe one-click URL) for one digest."""
        return f"{self.root}/stop/{self.signer().dumps('stop', digest_id, recipient_id, self.expiry(as_of))}"


class LinkSigner:
    """Signs and verifies link tokens with the key derived for links."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(derive_key(secret, "links"), salt="broker.link.v1")
        self._form_key = derive_key(secret, "link-form")

    def dumps(self, action: str, subject: str, party_id: str, expires: date) -> str:
        if action not in ACTIONS:
            raise ValueError(f"unknown link action {action!r}")
        # A list, not a dict: the JSON (and so the token) is the same for the same inputs, and short.
        return self._serializer.dumps([action, subject, party_tag(party_id), expires.strftime("%Y%m%d")])

    def loads(self, token: str, *, today: date) -> LinkToken:
        """Verify a token. Raises ``BadToken`` (forged, altered, malformed) or ``ExpiredToken``."""
        try:
            data = self._serializer.loads(token)  # itsdangerous compares signatures in constant time
        except (BadSignature, ValueError, UnicodeError):
            raise BadToken("this link is not one of ours") from None
        if (not isinstance(data, list) or len(data) != 4 or not all(isinstance(x, str) for x in data)
                or data[0] not in ACTIONS):
            raise BadToken("this link is not one of ours")
        try:
            expires = date(int(data[3][:4]), int(data[3][4:6]), int(data[3][6:8]))
        except ValueError:
            raise BadToken("this link is not one of ours") from None
        found = LinkToken(data[0], data[1], data[2], expires)
        if expires < today:
            raise ExpiredToken(f"this link expired on {expires.isoformat()}")
        return found

    def form_token(self, token: str) -> str:
        """The hidden form field that must come back with a confirmation POST (see ``check_form_token``)."""
        return hmac.new(self._form_key, token.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def check_form_token(self, token: str, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(self.form_token(token), sent)
