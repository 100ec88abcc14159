"""`check --deploy` refuses a directory reached without TLS."""

from __future__ import annotations

import pytest

from directory.checks import check_directory_tls


@pytest.mark.parametrize(
    ("url", "start_tls"),
    [
        ("", False),
        ("ldaps://dc1.corp.example.com", False),
        ("ldap://ldap.example.com", True),
        ("ldap://127.0.0.1:3389/", False),
    ],
)
def test_tls_or_loopback_passes(settings, url, start_tls):
    settings.IDP_LDAP_URL, settings.IDP_LDAP_START_TLS = url, start_tls

    assert check_directory_tls() == []


def test_plain_ldap_across_the_network_is_a_deploy_warning(settings):
    settings.IDP_LDAP_URL, settings.IDP_LDAP_START_TLS = "ldap://ldap.example.com", False

    (warning,) = check_directory_tls()
    assert warning.id == "directory.W001"
