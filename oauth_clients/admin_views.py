"""Admin pages for client apps beyond Django's own: register, one-time setup page, confirmations,
who may use the app (access, roles, claims) and the claims preview.

Each view checks the admin permission it needs, parses a form, calls one service and renders.
A plaintext secret travels only from the service to the session to one page render: it is never
put in a URL, a message, a log line or the change page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin, helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from oauth_clients import access, saml_metadata, selectors, services
from oauth_clients.forms import (
    AccessPolicyForm,
    AssignForm,
    ClaimMappingForm,
    ClaimsPreviewForm,
    DefineRoleForm,
    GrantRoleForm,
    RegisterClientForm,
    RotateSecretForm,
    SamlMetadataUploadForm,
    SamlSettingsForm,
    validation_error_to_form,
)
from oauth_clients.models import AppRole, Assignment, Client, RoleGrant

# The views are the client admin's own (oauth_clients/admin.py wraps them); they use only
# ModelAdmin's API, so that is the type they name (and the admin module imports them alone).
ClientAdmin = ModelAdmin

ONE_TIME_SECRET_KEY = "oauth_clients:one_time_secret"  # noqa: S105 (a session key name)

REGISTER_FIELDSETS: list[tuple[Any, dict[str, Any]]] = [
    (gettext_lazy("The app"), {"fields": ["kind", "name", "description"]}),
    (
        gettext_lazy("Sign-in"),
        {
            "fields": ["redirect_uris", "post_logout_redirect_uris", "scopes", "algorithm"],
            "description": gettext_lazy(
                "Not needed for a machine-to-machine service. Register the exact URIs the app "
                "uses; anything else is refused at sign-in."
            ),
        },
    ),
    (
        gettext_lazy("SAML 2.0 app"),
        {
            "fields": [
                "saml_metadata_file",
                "saml_metadata_url",
                "saml_entity_id",
                "saml_acs_url",
                "saml_certificate",
                "saml_nameid_format",
                "saml_sign_response",
            ],
            "description": gettext_lazy(
                "Only for a SAML 2.0 app: its metadata file, or its metadata URL, or its entity "
                "ID, ACS URL and certificate by hand. Redirect URIs and token settings do not "
                "apply; the scopes say which claims it receives as attributes."
            ),
        },
    ),
    (
        gettext_lazy("API and keys"),
        {
            "fields": ["audience", "jwks", "jwks_uri"],
            "description": gettext_lazy(
                "An API (resource server) names its audience: clients asking for it get JWT "
                "access tokens (RFC 9068). A server-side app, a service or an API may instead "
                "of a secret authenticate with its own keys (private_key_jwt): its public JWK "
                "Set, or the https URL where it publishes it."
            ),
        },
    ),
    (
        gettext_lazy("Trust and security"),
        {
            "fields": [
                "is_trusted",
                "requires_mfa",
                "require_dpop",
                "require_pushed_authorization_requests",
                "high_security",
            ],
            "description": gettext_lazy(
                "High security (FAPI 2.0) requires pushed requests, PKCE, DPoP and the app's "
                "own keys (private_key_jwt): register its public keys above."
            ),
        },
    ),
    (
        gettext_lazy("Shown to users"),
        {
            "fields": [
                "logo_uri",
                "client_uri",
                "initiate_login_uri",
                "policy_uri",
                "tos_uri",
                "owner_contact",
            ]
        },
    ),
    (
        gettext_lazy("Token lifetimes"),
        {
            "fields": list(services.LIFETIME_FIELDS),
            "description": gettext_lazy("The defaults suit most apps; shorter is safer."),
        },
    ),
    (
        gettext_lazy("Logout notifications"),
        {
            "fields": [
                "backchannel_logout_uri",
                "backchannel_logout_session_required",
                "frontchannel_logout_uri",
                "allow_private_network",
            ],
            "description": gettext_lazy(
                "Single sign-out: when a user's session ends here, the IdP tells the app "
                "(OpenID Connect Back-Channel Logout). Optional."
            ),
        },
    ),
]


def _context(model_admin: ClientAdmin, request: HttpRequest, **extra: Any) -> dict[str, Any]:
    opts = model_admin.model._meta
    return {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "has_view_permission": model_admin.has_view_permission(request),
        **extra,
    }


def _get_client(model_admin: ClientAdmin, request: HttpRequest, object_id: str) -> Client:
    client = model_admin.get_object(request, unquote(object_id))
    if client is None:
        raise Http404(_("No such client app."))
    return client


def _change_url(client: Client) -> str:
    return reverse("admin:oauth_clients_client_change", args=[client.pk])


def _setup_url(client: Client) -> str:
    return reverse("admin:oauth_clients_client_setup", args=[client.pk])


def _keep_secret_for_one_page(request: HttpRequest, client: Client, secret: str) -> None:
    request.session[ONE_TIME_SECRET_KEY] = {"client": client.pk, "secret": secret}


def _take_secret(request: HttpRequest, client: Client) -> str:
    """The secret kept for this client's setup page, removed from the session as it is read."""
    kept = request.session.get(ONE_TIME_SECRET_KEY)
    if not kept or kept.get("client") != client.pk:
        return ""
    del request.session[ONE_TIME_SECRET_KEY]
    return str(kept.get("secret", ""))


def register_view(model_admin: ClientAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = RegisterClientForm(request.POST or None, request.FILES or None)
    if (
        request.method == "POST"
        and form.is_valid()
        and form.cleaned_data["kind"] == Client.Kind.SAML
    ):
        try:
            client = services.register_saml_app(
                actor=request.user, request=request, **form.saml_arguments()
            )
        except ValidationError as exc:
            form.add_saml_error(exc)
        else:
            model_admin.log_addition(request, client, [{"added": {}}])
            return HttpResponseRedirect(_setup_url(client))
    elif request.method == "POST" and form.is_valid():
        try:
            client, secret = services.register_client(
                actor=request.user, request=request, **form.service_arguments()
            )
        except ValidationError as exc:
            validation_error_to_form(form, exc)
        else:
            model_admin.log_addition(request, client, [{"added": {}}])
            _keep_secret_for_one_page(request, client, secret)
            return HttpResponseRedirect(_setup_url(client))
    # AdminForm renders any form; django-stubs types it for ModelForm only.
    adminform = helpers.AdminForm(form, REGISTER_FIELDSETS, {})  # type: ignore[arg-type]
    context = _context(
        model_admin,
        request,
        title=_("Register an app"),
        adminform=adminform,
        form=form,
        errors=helpers.AdminErrorList(form, []),  # type: ignore[arg-type]
    )
    return TemplateResponse(request, "admin/oauth_clients/client/register.html", context)


def _snippets(facts: dict[str, Any], secret: str) -> list[dict[str, str]]:
    context = {**facts, "secret": secret}
    if "saml" in facts:
        names = [("saml", _("Any SAML 2.0 service provider"))]
    elif facts["kind"] == Client.Kind.DEVICE:
        names = [("device", _("Device authorization grant (curl)"))]
    elif facts["signs_users_in"]:
        names = [
            ("generic", _("Any OpenID Connect library")),
            ("allauth", _("Django + django-allauth")),
        ]
    else:
        names = [("service", _("Client credentials (curl)"))]
    return [
        {
            "id": name,
            "title": title,
            "text": render_to_string(f"admin/oauth_clients/client/snippets/{name}.txt", context),
        }
        for name, title in names
    ]


def setup_view(model_admin: ClientAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Everything a developer needs to connect the app; the secret only on the first render."""
    client = _get_client(model_admin, request, object_id)
    if not model_admin.has_view_or_change_permission(request, client):
        raise PermissionDenied
    secret = _take_secret(request, client)
    facts = selectors.setup_facts(client=client)
    context = _context(
        model_admin,
        request,
        title=_("Connect %(name)s") % {"name": client.name},
        original=client,
        client=client,
        facts=facts,
        secret=secret,
        snippets=_snippets(facts, secret),
        change_url=_change_url(client),
    )
    response = TemplateResponse(request, "admin/oauth_clients/client/setup.html", context)
    add_never_cache_headers(response)
    return response


def _confirm(
    model_admin: ClientAdmin,
    request: HttpRequest,
    client: Client,
    *,
    title: str,
    consequences: list[str],
    button: str,
    danger: bool = True,
    form: Any = None,
) -> HttpResponse:
    context = _context(
        model_admin,
        request,
        title=title,
        original=client,
        client=client,
        overview=selectors.client_overview(client=client),
        consequences=consequences,
        button=button,
        danger=danger,
        form=form,
        change_url=_change_url(client),
    )
    return TemplateResponse(request, "admin/oauth_clients/client/confirm.html", context)


def rotate_secret_view(
    model_admin: ClientAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    client = _get_client(model_admin, request, object_id)
    if not model_admin.has_change_permission(request, client):
        raise PermissionDenied
    if client.client_type != Client.CLIENT_CONFIDENTIAL:
        messages.error(request, _("A public client has no secret to rotate."))
        return HttpResponseRedirect(_change_url(client))
    form = RotateSecretForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            secret = services.rotate_client_secret(
                client=client,
                actor=request.user,
                grace_seconds=form.cleaned_data["grace_seconds"],
                request=request,
            )
        except ValidationError as exc:
            validation_error_to_form(form, exc)
        else:
            model_admin.log_change(request, client, _("Rotated the client secret."))
            _keep_secret_for_one_page(request, client, secret)
            return HttpResponseRedirect(_setup_url(client))
    return _confirm(
        model_admin,
        request,
        client,
        title=_("Rotate the secret of %(name)s") % {"name": client.name},
        consequences=[
            _("A new secret is generated and shown once on the next page."),
            _(
                "With 0 seconds of grace the current secret stops working at once: the app "
                "fails to sign users in until its operators deploy the new secret."
            ),
            _(
                "With a grace period both secrets work until it ends; then the old one is "
                "refused (invalid_client)."
            ),
        ],
        button=_("Rotate the secret"),
        form=form,
    )


def _simple_action(
    *,
    service: Callable[..., Any],
    permission: str,
    title: Any,
    consequences: Callable[[Client, selectors.ClientOverview], list[str]],
    button: Any,
    done: Any,
    log_message: Any,
    redirect_to_list: bool = False,
) -> Callable[[ClientAdmin, HttpRequest, str], HttpResponse]:
    def view(model_admin: ClientAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
        client = _get_client(model_admin, request, object_id)
        allowed = getattr(model_admin, f"has_{permission}_permission")(request, client)
        if not allowed:
            raise PermissionDenied
        if request.method == "POST":
            name = client.name
            if redirect_to_list:
                model_admin.log_deletions(request, Client.objects.filter(pk=client.pk))
            else:
                model_admin.log_change(request, client, str(log_message))
            service(client=client, actor=request.user, request=request)
            messages.success(request, done % {"name": name})
            if redirect_to_list:
                return HttpResponseRedirect(reverse("admin:oauth_clients_client_changelist"))
            return HttpResponseRedirect(_change_url(client))
        overview = selectors.client_overview(client=client)
        return _confirm(
            model_admin,
            request,
            client,
            title=title % {"name": client.name},
            consequences=consequences(client, overview),
            button=button,
        )

    return view


def _token_consequences(overview: selectors.ClientOverview) -> list[str]:
    return [
        _(
            "%(access)d active access tokens and %(refresh)d refresh tokens (%(users)d users) "
            "stop working at once."
        )
        % {
            "access": overview.active_access_tokens,
            "refresh": overview.active_refresh_tokens,
            "users": overview.distinct_users,
        },
    ]


disable_view = _simple_action(
    service=services.disable_client,
    permission="change",
    title=gettext_lazy("Disable %(name)s"),
    consequences=lambda client, overview: [
        _("Nobody can sign in to the app; it gets a clear error page instead."),
        *_token_consequences(overview),
        _("The app cannot get new tokens (invalid_client) until it is enabled again."),
        _("Consents are kept; revoked tokens stay revoked after enabling."),
    ],
    button=gettext_lazy("Disable the app"),
    done=gettext_lazy("%(name)s is disabled and its tokens are revoked."),
    log_message=gettext_lazy("Disabled the app."),
)

enable_view = _simple_action(
    service=services.enable_client,
    permission="change",
    title=gettext_lazy("Enable %(name)s"),
    consequences=lambda client, overview: [
        _("Users can sign in to the app again and it can get new tokens."),
        _("Tokens revoked while it was disabled stay revoked: users sign in again."),
    ],
    button=gettext_lazy("Enable the app"),
    done=gettext_lazy("%(name)s is enabled."),
    log_message=gettext_lazy("Enabled the app."),
)

revoke_view = _simple_action(
    service=services.revoke_all_client_tokens,
    permission="change",
    title=gettext_lazy("Revoke all tokens and consents of %(name)s"),
    consequences=lambda client, overview: [
        *_token_consequences(overview),
        _(
            "%(consents)d remembered consents are forgotten: users are asked again at their "
            "next sign-in (unless the app is trusted)."
        )
        % {"consents": overview.consents},
        _("The app itself stays enabled; users can sign in again right away."),
    ],
    button=gettext_lazy("Revoke everything"),
    done=gettext_lazy("All tokens and consents of %(name)s are revoked."),
    log_message=gettext_lazy("Revoked all tokens and consents."),
)

delete_view = _simple_action(
    service=services.delete_client,
    permission="delete",
    title=gettext_lazy("Delete %(name)s"),
    consequences=lambda client, overview: [
        _("The registration is removed for good: the client id can never sign anyone in."),
        *_token_consequences(overview),
        _("%(consents)d consents are deleted. Audit events are kept.")
        % {"consents": overview.consents},
        _("To stop the app only for a while, disable it instead."),
    ],
    button=gettext_lazy("Delete the app"),
    done=gettext_lazy("%(name)s is deleted."),
    log_message="",
    redirect_to_list=True,
)


# --- Who may use the app, its roles and claims


def _access_forms(client: Client, data: Any = None, action: str = "") -> dict[str, Any]:
    """The access page's forms; only the one named by `action` is bound to `data`."""

    def bound(name: str) -> Any:
        return data if action == name else None

    return {
        "policy_form": AccessPolicyForm(
            bound("policy"), initial={"access_policy": client.access_policy}, prefix="policy"
        ),
        "assign_form": AssignForm(bound("assign"), prefix="assign"),
        "role_form": DefineRoleForm(bound("role"), prefix="role"),
        "grant_form": GrantRoleForm(bound("grant"), client=client, prefix="grant"),
        "claims_form": ClaimMappingForm(bound("claims"), client=client, prefix="claims"),
    }


def _access_change(request: HttpRequest, client: Client, action: str, form: Any) -> str:
    """Apply one posted change through its service; the message to show."""
    actor = request.user
    if action == "policy":
        policy = form.cleaned_data["access_policy"]
        change = services.set_access_policy(
            client=client, policy=policy, actor=actor, request=request
        )
        if not change.changed:
            return _("Nothing changed.")
        if policy == Client.AccessPolicy.OPEN:
            return _("%(name)s is open to every active account.") % {"name": client.name}
        return _(
            "Only the assigned groups and users may use %(name)s; %(count)d users lose access."
        ) % {"name": client.name, "count": len(change.users_losing_access)}
    if action == "assign":
        services.assign(client=client, actor=actor, request=request, **form.who())
        return _("Assigned.")
    if action == "role":
        role = services.define_role(
            client=client,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            actor=actor,
            request=request,
        )
        return _("Role %(role)s saved.") % {"role": role.name}
    if action == "grant":
        role = form.cleaned_data["role"]
        services.grant_role(role=role, actor=actor, request=request, **form.who())
        return _("Role %(role)s granted.") % {"role": role.name}
    changed = services.set_claim_mapping(
        client=client,
        actor=actor,
        request=request,
        roles_claim=form.cleaned_data["roles_claim"],
        groups_filter=form.cleaned_data["groups_filter"],
        groups_prefix=form.cleaned_data["groups_prefix"],
        claim_groups=form.cleaned_data["claim_groups"],
        claim_attributes=form.cleaned_data["claim_attributes"],
    )
    return _("Claim mapping saved.") if changed else _("Nothing changed.")


def _access_removal(request: HttpRequest, client: Client, action: str, pk: str) -> str:
    """Remove one assignment, role grant or role (by id, of this client only)."""
    actor = request.user
    if action == "unassign":
        row = Assignment.objects.filter(client=client, pk=pk).first()
        if row is None:
            raise Http404
        change = services.unassign(
            client=client, group=row.group, user=row.user, actor=actor, request=request
        )
        return _("Assignment removed; %(count)d users lose access.") % {
            "count": len(change.users_losing_access)
        }
    if action == "revoke":
        grant = RoleGrant.objects.filter(role__client=client, pk=pk).select_related("role").first()
        if grant is None:
            raise Http404
        services.revoke_role(
            role=grant.role, group=grant.group, user=grant.user, actor=actor, request=request
        )
        return _("Role grant removed.")
    role = AppRole.objects.filter(client=client, pk=pk).first()
    if role is None:
        raise Http404
    services.delete_role(role=role, actor=actor, request=request)
    return _("Role %(role)s deleted.") % {"role": role.name}


ACCESS_FORM_ACTIONS = ("policy", "assign", "role", "grant", "claims")
ACCESS_REMOVALS = ("unassign", "revoke", "delete_role")


def access_view(model_admin: ClientAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """Who may use the app, its roles and claim mapping; every change through a service."""
    client = _get_client(model_admin, request, object_id)
    if not model_admin.has_view_or_change_permission(request, client):
        raise PermissionDenied
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if request.method == "POST":
        if not model_admin.has_change_permission(request, client):
            raise PermissionDenied
        here = reverse("admin:oauth_clients_client_access", args=[client.pk])
        if action in ACCESS_REMOVALS:
            message = _access_removal(request, client, action, request.POST.get("id", ""))
            model_admin.log_change(request, client, message)
            messages.success(request, message)
            return HttpResponseRedirect(here)
        if action not in ACCESS_FORM_ACTIONS:
            return HttpResponseRedirect(here)
    forms = _access_forms(client, request.POST if action else None, action)
    if action:
        form = forms[f"{action}_form"]
        if form.is_valid():
            try:
                message = _access_change(request, client, action, form)
            except ValidationError as exc:
                validation_error_to_form(form, exc)
            else:
                model_admin.log_change(request, client, message)
                messages.success(request, message)
                return HttpResponseRedirect(here)
    roles = list(
        AppRole.objects.filter(client=client)
        .prefetch_related("grants__group", "grants__user")
        .order_by("name")
    )
    assignments = list(
        Assignment.objects.filter(client=client)
        .select_related("group", "user")
        .order_by("group__name", "user__username")
    )
    context = _context(
        model_admin,
        request,
        title=_("Who may use %(name)s") % {"name": client.name},
        original=client,
        client=client,
        assignments=assignments,
        roles=roles,
        can_change=model_admin.has_change_permission(request, client),
        change_url=_change_url(client),
        preview_url=reverse("admin:oauth_clients_client_claims_preview", args=[client.pk]),
        **forms,
    )
    return TemplateResponse(request, "admin/oauth_clients/client/access.html", context)


def claims_preview_view(
    model_admin: ClientAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    """The claims a chosen user would get from this app's roles, groups filter and mapping."""
    client = _get_client(model_admin, request, object_id)
    if not model_admin.has_view_or_change_permission(request, client):
        raise PermissionDenied
    form = ClaimsPreviewForm(request.GET if "username" in request.GET else None)
    preview = None
    if form.is_valid():
        preview = access.claims_preview(user=form.cleaned_data["username"], client=client)
    context = _context(
        model_admin,
        request,
        title=_("Claims preview for %(name)s") % {"name": client.name},
        original=client,
        client=client,
        form=form,
        preview=preview,
        preview_json=(
            json.dumps(preview["claims"], indent=2, sort_keys=True, ensure_ascii=False)
            if preview
            else ""
        ),
        change_url=_change_url(client),
        access_url=reverse("admin:oauth_clients_client_access", args=[client.pk]),
    )
    return TemplateResponse(request, "admin/oauth_clients/client/claims_preview.html", context)


# --- A SAML app's service provider


def saml_view(model_admin: ClientAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """A SAML app's service-provider settings and its metadata refresh; each through a service."""
    client = _get_client(model_admin, request, object_id)
    if not model_admin.has_view_or_change_permission(request, client):
        raise PermissionDenied
    sp = selectors.saml_sp(client)
    if sp is None:
        raise Http404(_("This app is not a SAML app."))
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action and not model_admin.has_change_permission(request, client):
        raise PermissionDenied
    here = reverse("admin:oauth_clients_client_saml", args=[client.pk])
    form = SamlSettingsForm(request.POST if action == "save" else None, sp=sp)
    refresh_form = SamlMetadataUploadForm(
        request.POST if action == "refresh" else None,
        request.FILES if action == "refresh" else None,
    )
    if action == "save" and form.is_valid():
        try:
            fields = services.update_saml_sp(
                client=client, actor=request.user, changes=form.changes(), request=request
            )
        except ValidationError as exc:
            validation_error_to_form(form, exc)
        else:
            message = (
                _("SAML settings saved: %(fields)s.") % {"fields": ", ".join(fields)}
                if fields
                else _("Nothing changed.")
            )
            model_admin.log_change(request, client, message)
            messages.success(request, message)
            return HttpResponseRedirect(here)
    if action == "refresh" and refresh_form.is_valid():
        upload = refresh_form.cleaned_data.get("metadata_file")
        try:
            fields = services.refresh_saml_metadata(
                client=client,
                actor=request.user,
                request=request,
                metadata_xml=(
                    upload.read(saml_metadata.MAX_METADATA_BYTES + 1) if upload else None
                ),
            )
        except ValidationError as exc:
            for error in exc.messages:
                refresh_form.add_error("metadata_file", error)
        else:
            message = (
                _("Metadata refreshed: %(fields)s.") % {"fields": ", ".join(fields)}
                if fields
                else _("Metadata refreshed; nothing changed.")
            )
            model_admin.log_change(request, client, message)
            messages.success(request, message)
            return HttpResponseRedirect(here)
    context = _context(
        model_admin,
        request,
        title=_("SAML settings of %(name)s") % {"name": client.name},
        original=client,
        client=client,
        sp=sp,
        form=form,
        refresh_form=refresh_form,
        can_change=model_admin.has_change_permission(request, client),
        facts=selectors.saml_facts(client),
        change_url=_change_url(client),
    )
    return TemplateResponse(request, "admin/oauth_clients/client/saml.html", context)
