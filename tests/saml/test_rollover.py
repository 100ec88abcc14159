"""The SAML signing key's rollover: a staged next certificate is in our metadata before it signs,
so an SP that loaded the metadata then keeps validating after activation (SAML 2.0 Metadata
§2.4.1.1: several signing `KeyDescriptor`s), and assertions are signed with the current key only.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import time_machine
from oauth2_provider.settings import oauth2_settings

from oauth_clients import key_store
from oauth_clients.keys import key_files, staged_key_files, write_new_key
from oauth_clients.models import SigningKey
from oauth_clients.saml.keys import certificate_base64, certificate_pem
from tests.oidc.test_key_rollover import ENV_NAMES, restart, rotate
from tests.saml.conftest import authn_request, consume, idp_metadata, make_sp, posted, send_redirect


@pytest.fixture
def key_dir(settings, tmp_path, monkeypatch) -> Path:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    settings.IDP_SIGNING_KEY_DIR = tmp_path / "keys"
    write_new_key(settings.IDP_SIGNING_KEY_DIR)
    restart(settings)
    return settings.IDP_SIGNING_KEY_DIR


def certificate_of(path: Path) -> str:
    """A key file's certificate as metadata and signatures carry it (base64 DER)."""
    return certificate_base64(certificate_pem(path.read_text()))


def published_certificates(metadata_xml: str) -> list[str]:
    return ["".join(c.split()) for c in re.findall(r"<ds:X509Certificate>(.*?)<", metadata_xml)]


def metadata_trusting_only(metadata_xml: str, certificate: str) -> str:
    """Our metadata as an SP holds it that copied one certificate by hand: the other signing
    `KeyDescriptor`s cut."""
    descriptors = re.findall(r"<md:KeyDescriptor.*?</md:KeyDescriptor>", metadata_xml, re.S)
    for descriptor in descriptors:
        if certificate not in "".join(descriptor.split()):
            metadata_xml = metadata_xml.replace(descriptor, "")
    assert len(re.findall(r"<md:KeyDescriptor", metadata_xml)) == 1
    return metadata_xml


def sign_in(client, sp):
    """One SP-initiated sign-in; the SP's own validation of our Response (or its exception)."""
    sent = authn_request(sp)
    post = posted(send_redirect(client, sp, sent))
    return post, consume(sp, post, outstanding={sent.request_id: "/"})


def signing_certificates_in(response_xml: str) -> set[str]:
    return {"".join(c.split()) for c in re.findall(r"X509Certificate>([^<]+)<", response_xml)}


def activate(settings) -> None:
    with time_machine.travel(time.time() + int(oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS) + 1):
        rotate("--activate")
    restart(settings)


@pytest.mark.spec("SAML 2.0 Metadata", "2.4.1.1")
def test_a_staged_certificate_is_published_and_the_current_key_still_signs(
    client, user, saml_app, sp_keys, key_dir, settings
):
    current = certificate_of(key_files(key_dir)[0])
    rotate("--stage")
    nxt = certificate_of(staged_key_files(key_dir)[0])
    restart(settings)
    metadata_xml = idp_metadata(client)
    assert published_certificates(metadata_xml) == [current, nxt]
    client.force_login(user)

    post, result = sign_in(client, make_sp(metadata_xml, sp_keys))
    assert result is not None
    assert nxt not in signing_certificates_in(post.xml)
    assert result.assertion.signature is not None
    # Signed with the current key: an SP that trusts only the next certificate refuses it.
    with pytest.raises(Exception):  # noqa: B017, PT011 (pysaml2 raises SignatureError subclasses)
        sign_in(client, make_sp(metadata_trusting_only(metadata_xml, nxt), sp_keys))
    assert sign_in(client, make_sp(metadata_trusting_only(metadata_xml, current), sp_keys))[1]


@pytest.mark.spec("SAML 2.0 Metadata", "2.4.1.1")
def test_an_sp_that_loaded_the_metadata_while_staged_keeps_validating_after_activation(
    client, user, saml_app, sp_keys, key_dir, settings
):
    old = certificate_of(key_files(key_dir)[0])
    rotate("--stage")
    restart(settings)
    loaded_while_staged = idp_metadata(client)
    sp = make_sp(loaded_while_staged, sp_keys)
    client.force_login(user)
    assert sign_in(client, sp)[1] is not None

    activate(settings)
    new = certificate_of(key_files(key_dir)[0])
    assert new != old
    assert published_certificates(idp_metadata(client)) == [new, old], "old one kept as previous"

    post, result = sign_in(client, sp)  # the same SP, metadata not refreshed
    assert result is not None
    assert result.ava["email"] == ["alice@example.com"]
    assert old not in signing_certificates_in(post.xml)
    # Signed with the new key only: an SP that still trusts only the old certificate refuses it.
    with pytest.raises(Exception):  # noqa: B017, PT011 (pysaml2 raises SignatureError subclasses)
        sign_in(client, make_sp(metadata_trusting_only(loaded_while_staged, old), sp_keys))


@pytest.mark.spec("SAML 2.0 Metadata", "2.4.1.1")
def test_metadata_lists_current_next_and_previous_certificates(
    client, saml_app, sp_keys, key_dir, settings
):
    first = certificate_of(key_files(key_dir)[0])
    rotate("--stage")
    activate(settings)
    current = certificate_of(key_files(key_dir)[0])
    rotate("--stage")
    nxt = certificate_of(staged_key_files(key_dir)[0])
    restart(settings)

    metadata_xml = idp_metadata(client)
    assert published_certificates(metadata_xml) == [current, nxt, first]
    store = make_sp(metadata_xml, sp_keys).metadata
    (entity_id,) = store.keys()
    assert len(store.certs(entity_id, "idpsso", "signing")) == 3


def test_a_retired_certificate_leaves_the_metadata(client, saml_app, key_dir, settings):
    old = certificate_of(key_files(key_dir)[0])
    rotate("--stage")
    activate(settings)
    longest = int(oauth2_settings.ID_TOKEN_EXPIRE_SECONDS)
    with time_machine.travel(time.time() + 2 * longest + 3600):
        rotate("--retire")
    restart(settings)
    assert old not in published_certificates(idp_metadata(client))
    assert len(published_certificates(idp_metadata(client))) == 1


@pytest.fixture
def database_keys(database_key_store, transactional_db):
    """The database key store (tests/conftest.py) with its first key: rotations reach this
    process after commit, with no `restart`."""
    rotate("--auto")


def database_certificate(state: str) -> str:
    row = SigningKey.objects.get(algorithm="RS256", state=state)
    return certificate_base64(certificate_pem(key_store.decrypt_private_key(row)))


@pytest.mark.spec("SAML 2.0 Metadata", "2.4.1.1")
def test_database_keys_roll_over_in_metadata_and_signatures_without_restart(
    client, user, saml_app, sp_keys, database_keys
):
    old = database_certificate(SigningKey.State.ACTIVE)
    assert published_certificates(idp_metadata(client)) == [old]
    rotate("--stage")
    nxt = database_certificate(SigningKey.State.NEXT)
    loaded_while_staged = idp_metadata(client)
    assert published_certificates(loaded_while_staged) == [old, nxt]
    sp = make_sp(loaded_while_staged, sp_keys)
    client.force_login(user)
    post, result = sign_in(client, sp)
    assert result is not None
    assert nxt not in signing_certificates_in(post.xml)

    rotate("--activate", "--force")
    assert published_certificates(idp_metadata(client)) == [nxt, old]
    post, result = sign_in(client, sp)  # the same SP, metadata not refreshed
    assert result is not None
    assert old not in signing_certificates_in(post.xml)
    with pytest.raises(Exception):  # noqa: B017, PT011 (pysaml2 raises SignatureError subclasses)
        sign_in(client, make_sp(metadata_trusting_only(loaded_while_staged, old), sp_keys))
