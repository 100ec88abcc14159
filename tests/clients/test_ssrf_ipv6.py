"""Back-channel logout URIs: IPv6 forms that carry an internal IPv4 address are internal too.

NAT64, 6to4, IPv4-compatible, IPv4-mapped, IPv4-translated and Teredo addresses reach the IPv4
address inside them; one check (`uri_rules.address_is_internal`) refuses them at registration
and again at send time, before the sender connects (OpenID Connect Back-Channel Logout 1.0 §2.2
and §4: the IdP must not become a way into the internal network).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator

import pytest
from django.core.exceptions import ValidationError

from oauth_clients import services, uri_rules
from oauth_clients.models import Client
from oauth_clients.oidc import backchannel

SPEC = "OpenID Connect Back-Channel Logout 1.0"

# Each IPv6 form and the internal IPv4 address it stands for.
INTERNAL_FORMS = {
    "64:ff9b::7f00:1": "127.0.0.1",  # NAT64 well-known prefix (RFC 6052)
    "64:ff9b::a9fe:a9fe": "169.254.169.254",  # NAT64 to the cloud metadata address
    "64:ff9b:1::a00:1": "10.0.0.1",  # local-use NAT64 prefix (RFC 8215)
    "2002:7f00:1::": "127.0.0.1",  # 6to4 (RFC 3056)
    "2002:a9fe:a9fe::1": "169.254.169.254",
    "::7f00:1": "127.0.0.1",  # IPv4-compatible (RFC 4291 §2.5.5.1)
    "::a9fe:a9fe": "169.254.169.254",
    "::ffff:127.0.0.1": "127.0.0.1",  # IPv4-mapped (RFC 4291 §2.5.5.2)
    "::ffff:0:a9fe:a9fe": "169.254.169.254",  # IPv4-translated (RFC 2765 §2.1)
    "2001:0:7f00:1::": "127.0.0.1",  # Teredo server (RFC 4380)
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "127.0.0.1",  # Teredo client (obfuscated)
}
# Public IPv6, and translation forms of a public IPv4 address (93.184.216.34): still allowed.
PUBLIC_FORMS = ["2606:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::1"]


def resolves_to(*addresses: str) -> Callable[[str], list[str]]:
    return lambda host: list(addresses)


def register(admin_user, uri: str, resolver=None) -> Client:
    client, _secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Wiki",
        redirect_uris=["https://app.example.com/oidc/callback"],
        backchannel_logout_uri=uri,
        resolver=resolver,
    )
    return client


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.3)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def listener() -> Iterator[Listener]:
    listening = Listener()
    yield listening
    listening.sock.close()


def test_each_form_carries_the_internal_address():
    for form, inner in INTERNAL_FORMS.items():
        carried = uri_rules.embedded_ipv4_addresses(ipaddress.ip_address(form))
        assert ipaddress.ip_address(inner) in carried, form
    assert uri_rules.embedded_ipv4_addresses(ipaddress.ip_address("2606:4700::1111")) == []


# --------------------------------------------------------------------------- registration


@pytest.mark.spec(SPEC, "2.2")
@pytest.mark.parametrize("address", PUBLIC_FORMS)
def test_public_ipv6_backchannel_uri_is_registered(db, admin_user, address):
    uri = f"https://[{address}]/bcl"
    assert register(admin_user, uri).backchannel_logout_uri == uri
    by_name = register(admin_user, "https://rp.example.com/bcl", resolver=resolves_to(address))
    assert by_name.backchannel_logout_uri == "https://rp.example.com/bcl"


@pytest.mark.spec(SPEC, "2.2")
@pytest.mark.parametrize("address", list(INTERNAL_FORMS))
def test_ipv6_form_of_an_internal_address_is_refused_at_registration(db, admin_user, address):
    assert register(admin_user, "https://[2606:4700::1111]/bcl")  # public: accepted
    for uri, resolver in [
        (f"https://[{address}]/bcl", None),
        ("https://rp.example.com/bcl", resolves_to(address)),
    ]:
        with pytest.raises(ValidationError) as refused:
            register(admin_user, uri, resolver=resolver)
        (message,) = refused.value.message_dict["backchannel_logout_uri"]
        assert "internal" in message
    # Allowed only when the admin says the app lives on the private network.
    client, _secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Intranet",
        redirect_uris=["https://intranet.example.com/cb"],
        backchannel_logout_uri=f"https://[{address}]/bcl",
        allow_private_network=True,
    )
    assert client.allow_private_network


# --------------------------------------------------------------------------- send time


@pytest.mark.spec(SPEC, "2.2")
@pytest.mark.parametrize("address", PUBLIC_FORMS)
def test_public_ipv6_destination_passes_the_send_time_check(address):
    """Only the check: nothing is sent to the internet from the tests."""
    destination = backchannel.resolve_destination(
        f"https://[{address}]/bcl", allow_private_network=False
    )
    assert destination == (address, "", False)
    by_name = backchannel.resolve_destination(
        "https://rp.example.com/bcl", allow_private_network=False, resolver=resolves_to(address)
    )
    assert by_name == (address, "", False)


def test_the_listener_sees_a_connection_through_the_mapped_form(listener):
    """The positive control: an allowed private-network app is reached at 127.0.0.1 through
    ::ffff:127.0.0.1, and the listener counts that connection (no TLS there: not delivered)."""
    outcome = backchannel.send_logout_token(
        uri=f"https://rp.example.test:{listener.port}/bcl",
        token="a.b.c",
        allow_private_network=True,
        timeout=0.5,
        resolver=resolves_to("::ffff:127.0.0.1"),
    )
    assert not outcome.delivered
    assert listener.connections() == 1


@pytest.mark.spec(SPEC, "2.2")
@pytest.mark.parametrize("address", list(INTERNAL_FORMS))
def test_ipv6_form_of_an_internal_address_is_refused_at_send_time(listener, address):
    """Registered when the name was public (or before this rule); nothing is sent now."""
    for uri, resolver in [
        (f"https://[{address}]:{listener.port}/bcl", None),
        (f"https://rp.example.test:{listener.port}/bcl", resolves_to(address)),
    ]:
        outcome = backchannel.send_logout_token(
            uri=uri, token="a.b.c", allow_private_network=False, timeout=0.5, resolver=resolver
        )
        assert not outcome.delivered
        assert not outcome.retryable
        assert "refused" in outcome.error, outcome.error
        assert outcome.status_code is None
    assert listener.connections() == 0
