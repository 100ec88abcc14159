"""A second instance of this IdP, the real upstream OpenID Provider of the brokering tests.

Run as `python -m tests.federation.upstream_server PORT REDIRECT_URI...` with IDP_DATA_DIR,
IDP_ISSUER and DJANGO_SETTINGS_MODULE=tests.federation.upstream_settings set: makes its SQLite
tables, three people (two with TOTP), a trusted web client for the brokering IdP (and, with
UPSTREAM_SAML_SP_ENTITY_ID and UPSTREAM_SAML_ACS set, a SAML app for it), prints the
client's credentials as one JSON line, then serves HTTP on 127.0.0.1:PORT until killed.
One process does it all: Django starts once.
"""

from __future__ import annotations

import io
import json
import os
import sys

import django

UPSTREAM_PASSWORD = "upstream horse battery staple"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def main() -> None:
    port = int(sys.argv[1])
    redirect_uris = sys.argv[2:]
    django.setup()
    from allauth.mfa.totp.internal.auth import TOTP
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.core.servers.basehttp import WSGIServer, run
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", run_syncdb=True, interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    from accounts import services

    users = get_user_model().objects
    carol = users.create_user(
        "carol", "carol@corp.example", UPSTREAM_PASSWORD, first_name="Carol", last_name="Upstream"
    )
    dave = users.create_user(
        "dave", "dave@corp.example", UPSTREAM_PASSWORD, first_name="Dave", last_name="Twofactor"
    )
    TOTP.activate(dave, TOTP_SECRET)
    # A second person with a second factor: a one-time code is accepted once per person, and two
    # tests may sign in within the same 30 seconds.
    frank = users.create_user("frank", "frank@corp.example", UPSTREAM_PASSWORD)
    TOTP.activate(frank, TOTP_SECRET)
    # And one for the SAML upstream's tests (tests/federation/test_saml_upstream.py).
    grace = users.create_user("grace", "grace@corp.example", UPSTREAM_PASSWORD)
    TOTP.activate(grace, TOTP_SECRET)
    engineering = services.create_group(name="engineering", actor=None)
    services.add_members(group=engineering, users=[carol], actor=None)
    out = io.StringIO()
    args = ["create", "--kind", "web", "--name", "Broker", "--client-id", "broker", "--trusted"]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    for scope in ("openid", "profile", "email", "groups"):
        args += ["--scope", scope]
    call_command("clients", *args, "--json", stdout=out)
    created = json.loads(out.getvalue())
    saml_sp = os.environ.get("UPSTREAM_SAML_SP_ENTITY_ID")
    if saml_sp:
        # The brokering IdP as a SAML service provider of this one (federation/saml/).
        from oauth_clients.services import register_saml_app

        register_saml_app(
            name="Broker (SAML)",
            entity_id=saml_sp,
            acs_urls=[os.environ["UPSTREAM_SAML_ACS"]],
            nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            allowed_scopes=("openid", "profile", "email", "groups"),
            actor=None,
        )
    print(json.dumps({"client_id": "broker", "client_secret": created["client_secret"]}))
    sys.stdout.flush()
    run("127.0.0.1", port, get_wsgi_application(), threading=True, server_cls=WSGIServer)


if __name__ == "__main__":
    main()
