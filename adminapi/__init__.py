"""The admin REST API at /api/v1/, for automation: Terraform, scripts, the SIEM.

Built on django-ninja rather than Django REST framework + drf-spectacular: ninja writes an
OpenAPI 3.1 document natively from the same pydantic models that parse and validate each
request (drf-spectacular's default is 3.0 and its schema is inferred from serializers beside
the code that validates), pydantic refuses unknown fields with one setting, and the API needs
none of DRF's browsable pages, sessions or permission classes: authentication is a service
client's bearer token (adminapi/auth.py) and every change goes through the same services as the
admin and the CLI (accounts.services, oauth_clients.services), with the service client as the
audit row's actor (accounts.actors.ServiceActor).

It sits above accounts and the registry and reads tokens through the engine's bearer check
(DOT's `verify_request` with our validator); nothing below imports it.
"""
