"""Signing in through a real upstream SAML 2.0 identity provider: a second instance of this IdP
(its SAML IdP, oauth_clients/saml/), registered here by its metadata (federation/saml/)."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import Group

from accounts.models import AuditEvent, User
from federation.models import UpstreamProvider
from federation.saml.metadata import read_idp_metadata
from tests.federation.conftest import SAML_SLUG, saml_acs_uri
from tests.federation.saml_helpers import path_of, sign_in_upstream_saml
from tests.federation.test_upstream_sign_in import session_amr

pytestmark = pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.3")


@pytest.fixture
def corp_saml(db, upstream_idp) -> UpstreamProvider:
    metadata = requests.get(f"{upstream_idp.url}/saml/metadata/", timeout=10).content
    idp = read_idp_metadata(metadata)
    return UpstreamProvider.objects.create(
        name="Corp SAML",
        slug=SAML_SLUG,
        kind=UpstreamProvider.Kind.SAML,
        saml_entity_id=idp.entity_id,
        saml_sso_url=idp.sso_url,
        saml_certificate=idp.certificate,
        allow_private_network=True,
        email_domains="corp.example",
        create_accounts=True,
        asserts_verified_email=True,
    )


def refusals() -> list[str]:
    return [
        str(extra.get("reason", ""))
        for extra in AuditEvent.objects.filter(type=AuditEvent.Type.UPSTREAM_REFUSED).values_list(
            "extra", flat=True
        )
    ]


def start_saml(broker, slug=SAML_SLUG, **data) -> str:
    response = broker.post(f"/accounts/saml/{slug}/login/", {"process": "login", **data})
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    return response["Location"]


def deliver(broker, acs: str, fields: dict[str, str]):
    """The browser posts the response to our ACS, which sends it on to finish with its session."""
    response = broker.post(path_of(acs), fields)
    assert response.status_code == HTTPStatus.FOUND, response.content[:500]
    return broker.get(response["Location"])


def test_a_person_signs_in_through_the_saml_upstream_and_is_created_just_in_time(
    broker, corp_saml, upstream_idp
):
    sso = start_saml(broker, next="/account/")
    assert sso.startswith(f"{upstream_idp.url}/saml/sso/redirect/")
    assert "SAMLRequest" in parse_qs(urlsplit(sso).query)
    acs, fields = sign_in_upstream_saml(sso, "carol")
    assert acs == saml_acs_uri(SAML_SLUG)

    response = deliver(broker, acs, fields)

    assert response.status_code == HTTPStatus.FOUND, refusals()
    assert response["Location"] == "/account/"
    user = User.objects.get(email="carol@corp.example")
    assert (user.username, user.first_name, user.last_name) == ("carol", "Carol", "Upstream")
    assert EmailAddress.objects.get(user=user).verified
    assert SocialAccount.objects.get(user=user).provider == SAML_SLUG
    created = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=user)
    assert created.extra == {"source": "upstream", "provider": SAML_SLUG, "just_in_time": True}
    signed_in = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_SIGNED_IN, subject=user)
    assert signed_in.extra["provider"] == SAML_SLUG
    assert session_amr(broker) == ["fed"]
