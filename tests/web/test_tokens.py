"""Link tokens: deterministic, bound to (party, subject, action), expiring; configuration of the secret."""

from __future__ import annotations

from datetime import date

import pytest
from web_world import BASE_URL, LINKS, SECRET

from broker.errors import ConfigError
from broker.web.config import link_settings, load_secret
from broker.web.tokens import BadToken, ExpiredToken, LinkSettings, LinkSigner, derive_key, party_tag

DAY = date(2025, 1, 16)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_links_are_a_function_of_their_inputs_only():
    assert LINKS.item_links("ABCD-EFGH-JKLM", "V1", DAY) == LINKS.item_links("ABCD-EFGH-JKLM", "V1", DAY)
    assert LINKS.stop_link("d1", "V1", DAY) == LINKS.stop_link("d1", "V1", DAY)
    other_secret = LinkSettings(BASE_URL, "another-secret-" + "y" * 40)
    assert other_secret.item_links("ABCD-EFGH-JKLM", "V1", DAY) != LINKS.item_links("ABCD-EFGH-JKLM", "V1", DAY)


def test_a_token_says_what_it_was_made_for_and_no_internal_id():
    links = LINKS.item_links("ABCD-EFGH-JKLM", "party-with-a-secret-id", DAY)
    assert set(links) == {"interested", "not_relevant"}
    signer = LinkSigner(SECRET)
    found = signer.loads(token_of(links["not_relevant"]), today=DAY)
    assert (found.action, found.subject, found.expires) == ("not_relevant", "ABCD-EFGH-JKLM", date(2025, 2, 15))
    assert found.matches_party("party-with-a-secret-id") and not found.matches_party("V2")
    import base64
    body = token_of(links["not_relevant"]).split(".")[0]
    decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    assert "party-with-a-secret-id" not in decoded and party_tag("party-with-a-secret-id") in decoded


def test_tampered_tokens_and_other_secrets_are_refused():
    signer = LinkSigner(SECRET)
    token = token_of(LINKS.item_links("ABCD-EFGH-JKLM", "V1", DAY)["interested"])
    body, sig = token.split(".")
    # Another action under the same signature, a changed signature, rubbish, another secret's token.
    import base64
    forged = base64.urlsafe_b64encode(b'["stop","ABCD-EFGH-JKLM","x","20991231"]').decode().rstrip("=")
    for bad in (f"{forged}.{sig}", f"{body}.{sig[:-2]}AA", "rubbish", "", f"{body}.",
                token_of(LinkSettings(BASE_URL, "z" * 40).item_links("ABCD-EFGH-JKLM", "V1", DAY)["interested"])):
        with pytest.raises(BadToken):
            signer.loads(bad, today=DAY)
    assert signer.loads(token, today=DAY).action == "interested"


def test_tokens_expire_after_the_digest_date_plus_the_configured_days():
    signer = LinkSigner(SECRET)
    token = token_of(LinkSettings(BASE_URL, SECRET, days=3).stop_link("d1", "V1", DAY))
    assert signer.loads(token, today=date(2025, 1, 19)).expires == date(2025, 1, 19)  # the last day works
    with pytest.raises(ExpiredToken):
        signer.loads(token, today=date(2025, 1, 20))


def test_form_tokens_are_bound_to_their_link_and_keys_to_their_purpose():
    signer = LinkSigner(SECRET)
    assert signer.check_form_token("abc", signer.form_token("abc"))
    assert not signer.check_form_token("abc", signer.form_token("abd"))
    assert not signer.check_form_token("abc", None) and not signer.check_form_token("abc", "")
    assert len({derive_key(SECRET, p) for p in ("links", "session", "link-form")}) == 3


def test_secret_from_the_environment_or_a_file(tmp_path):
    assert load_secret({}) is None
    assert load_secret({"BROKER_SECRET": " s3cret \n"}) == "s3cret"
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    assert load_secret({"BROKER_SECRET_FILE": str(path)}) == SECRET
    with pytest.raises(ConfigError, match="cannot read"):
        load_secret({"BROKER_SECRET_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        load_secret({"BROKER_SECRET_FILE": str(tmp_path / "empty")})


def test_links_need_both_a_base_url_and_a_good_secret():
    assert link_settings(None, env={}) is None
    assert link_settings(BASE_URL, env={"BROKER_SECRET": SECRET}) == LinkSettings(BASE_URL, SECRET, 30)
    with pytest.raises(ConfigError, match="no signing secret"):
        link_settings(BASE_URL, env={})
    with pytest.raises(ConfigError, match="no base URL"):
        link_settings(None, env={"BROKER_SECRET": SECRET})
    with pytest.raises(ConfigError, match="at least 32"):
        link_settings(BASE_URL, env={"BROKER_SECRET": "short"})
    for bad in ("ftp://x.example", "https://x.example/?a=1", "javascript:alert(1)", "https://x.example/<a>"):
        with pytest.raises(ConfigError, match="base URL"):
            link_settings(bad, env={"BROKER_SECRET": SECRET})
    assert "secret" not in repr(LinkSettings(BASE_URL, SECRET)).replace("secret=", "")  # never printed
