"""State changes of upstream sign-in: each audited with the provider as its source.

Sign-in (`record_upstream_sign_in`: the audit row, the session's `amr`, the group mapping),
refusals, links and their removal, accounts created just in time, and the administrator's
changes to a provider (its client secret written, never read back).
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest

from accounts import services as account_services
from accounts.audit import record_event
from accounts.models import AuditEvent, User
from accounts.sessions import record_upstream_mfa
from federation.models import UpstreamProvider
from federation.secrets import encrypt_secret
from federation.selectors import forget_sign_in_options
from oauth_clients.outbound import clean_text

# RFC 8176 §2 values an upstream uses to say more than one factor was used. Entra ID and Okta
# say "mfa"; a hardware key, a one-time code or a fingerprint alongside a password say it too.
MULTI_FACTOR_AMR = frozenset({"mfa"})


def upstream_claims(account: SocialAccount | Any) -> dict[str, Any]:
    """What the provider said of the person: the ID token's claims over userinfo's (OIDC), or
    the provider's user document (GitHub)."""
    data = account.extra_data if isinstance(account.extra_data, dict) else {}
    if "saml_attributes" in data:
        return saml_claims(data)
    if "id_token" in data or "userinfo" in data:
        userinfo = data.get("userinfo") or {}
        id_token = data.get("id_token") or {}
        return {**userinfo, **id_token}
    return dict(data)


def saml_claims(data: dict[str, Any]) -> dict[str, Any]:
    """A SAML assertion's attributes as claims: a one-valued attribute as its value, a
    multi-valued one (groups) as a list; `email` is the mapped address (federation.saml)."""
    attributes = data.get("saml_attributes")
    claims: dict[str, Any] = {}
    if isinstance(attributes, dict):
        for name, values in attributes.items():
            if isinstance(values, list):
                claims[str(name)] = values[0] if len(values) == 1 else values
    if data.get("email"):
        claims["email"] = data["email"]
    return claims


def id_token_claims(account: SocialAccount | Any) -> dict[str, Any]:
    data = account.extra_data if isinstance(account.extra_data, dict) else {}
    claims = data.get("id_token")
    return claims if isinstance(claims, dict) else {}


def asserted_mfa(account: SocialAccount | Any, provider: UpstreamProvider | None = None) -> bool:
    """The provider says a second factor was used: the ID token's RFC 8176 `amr`, or a SAML
    assertion's AuthnContextClassRef among those the administrator listed for the provider."""
    data = account.extra_data if isinstance(account.extra_data, dict) else {}
    if "saml_attributes" in data:
        contexts = data.get("saml_authn_contexts")
        if provider is None or not isinstance(contexts, list):
            return False
        return bool(provider.mfa_context_list & {str(value) for value in contexts})
    amr = id_token_claims(account).get("amr")
    return isinstance(amr, list) and bool(MULTI_FACTOR_AMR & {str(value) for value in amr})


def _source(provider: UpstreamProvider | None, slug: str) -> dict[str, str]:
    return {"source": "upstream", "provider": provider.slug if provider else slug}


def upstream_groups(*, provider: UpstreamProvider, account: SocialAccount) -> set[str]:
    if not provider.groups_claim:
        return set()
    value = upstream_claims(account).get(provider.groups_claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return set()
    return {str(item) for item in value}


def mapped_groups(provider: UpstreamProvider) -> dict[str, list[Group]]:
    """The provider's mapping as groups here (upstream name → groups). A group that carries
    administration permissions is never handed out by an upstream: it is left out."""
    mapping = provider.group_mapping if isinstance(provider.group_mapping, dict) else {}
    names = {str(name) for name in mapping.values()}
    groups = {
        group.name: group
        for group in Group.objects.filter(name__in=names, permissions__isnull=True)
    }
    result: dict[str, list[Group]] = {}
    for upstream, local in mapping.items():
        if str(local) in groups:
            result.setdefault(str(upstream), []).append(groups[str(local)])
    return result


@transaction.atomic
def sync_upstream_groups(
    *, user: User, provider: UpstreamProvider, names: set[str], request: HttpRequest | None
) -> dict[str, list[str]]:
    """The person is in exactly the mapped groups whose upstream names the provider sent;
    groups outside the mapping are not touched. Each change through the group services (each
    audited); returns what changed."""
    mapping = mapped_groups(provider)
    wanted = {
        group.pk: group for name, groups in mapping.items() if name in names for group in groups
    }
    managed = {group.pk: group for groups in mapping.values() for group in groups}
    current = set(user.groups.filter(pk__in=managed).values_list("pk", flat=True))
    added, removed = [], []
    for pk in sorted(wanted.keys() - current):
        account_services.add_members(group=wanted[pk], users=[user], actor=None, request=request)
        added.append(wanted[pk].name)
    for pk in sorted((current & managed.keys()) - wanted.keys()):
        account_services.remove_members(
            group=managed[pk], users=[user], actor=None, request=request
        )
        removed.append(managed[pk].name)
    return {"groups_added": added, "groups_removed": removed}


@transaction.atomic
def record_upstream_sign_in(*, request: HttpRequest, user: User, sociallogin: SocialLogin) -> None:
    """A completed sign-in through an upstream provider: the session's `amr` (fed, and mfa when
    the provider is trusted for it and said so), the group mapping, one audit row."""
    account = sociallogin.account
    provider = UpstreamProvider.objects.filter(slug=account.provider).first()
    trusted = bool(provider and provider.trust_mfa and asserted_mfa(account, provider))
    record_upstream_mfa(request, provider=account.provider, uid=account.uid, trusted=trusted)
    changes: dict[str, list[str]] = {}
    if provider is not None:
        names = upstream_groups(provider=provider, account=account)
        changes = sync_upstream_groups(user=user, provider=provider, names=names, request=request)
    record_event(
        type=AuditEvent.Type.UPSTREAM_SIGNED_IN,
        request=request,
        actor=user,
        subject=user,
        upstream_mfa=trusted,
        **_source(provider, account.provider),
        **changes,
    )


def record_refusal(*, request: HttpRequest | None, slug: str, reason: str, **extra: Any) -> None:
    """An upstream sign-in this IdP refused (no session was opened)."""
    provider = UpstreamProvider.objects.filter(slug=slug).first()
    record_event(
        type=AuditEvent.Type.UPSTREAM_REFUSED,
        request=request,
        reason=clean_text(reason),
        **_source(provider, slug),
        **extra,
    )


def record_link(*, request: HttpRequest | None, account: SocialAccount, how: str) -> None:
    provider = UpstreamProvider.objects.filter(slug=account.provider).first()
    record_event(
        type=AuditEvent.Type.IDENTITY_LINKED,
        request=request,
        actor=account.user,
        subject=account.user,
        how=how,
        **_source(provider, account.provider),
    )


def record_unlink(*, request: HttpRequest | None, account: SocialAccount) -> None:
    provider = UpstreamProvider.objects.filter(slug=account.provider).first()
    record_event(
        type=AuditEvent.Type.IDENTITY_UNLINKED,
        request=request,
        subject=account.user,
        **_source(provider, account.provider),
    )


def record_created(*, request: HttpRequest | None, user: User, slug: str) -> None:
    """An account created just in time at its first upstream sign-in."""
    provider = UpstreamProvider.objects.filter(slug=slug).first()
    record_event(
        type=AuditEvent.Type.USER_CREATED,
        request=request,
        actor=user,
        subject=user,
        just_in_time=True,
        **_source(provider, slug),
    )


@transaction.atomic
def save_provider(
    *,
    provider: UpstreamProvider,
    client_secret: str | None,
    actor: Any,
    request: HttpRequest | None,
    changed: list[str],
) -> UpstreamProvider:
    """The administrator's change (or creation). `client_secret` None keeps the stored one;
    the secret itself is never recorded, only that it changed."""
    created = provider.pk is None
    if client_secret:
        provider.client_secret_encrypted = encrypt_secret(client_secret)
    provider.save()
    forget_sign_in_options()
    record_event(
        type=AuditEvent.Type.UPSTREAM_PROVIDER_CHANGED,
        request=request,
        actor=actor,
        provider=provider.slug,
        created=created,
        fields=sorted(set(changed) - {"client_secret"}),
        secret_changed=bool(client_secret),
        enabled=provider.enabled,
    )
    return provider


@transaction.atomic
def delete_provider(*, provider: UpstreamProvider, actor: Any, request: HttpRequest | None) -> int:
    """The provider goes, with the links of people to it (they sign in another way)."""
    links = SocialAccount.objects.filter(provider=provider.slug)
    count = links.count()
    links.delete()
    record_event(
        type=AuditEvent.Type.UPSTREAM_PROVIDER_CHANGED,
        request=request,
        actor=actor,
        provider=provider.slug,
        deleted=True,
        links_removed=count,
    )
    provider.delete()
    forget_sign_in_options()
    return count


class IdentityRemovalRefused(Exception):
    """Removing this link would leave the person no way to sign in."""


@transaction.atomic
def remove_identity(*, user: User, account: SocialAccount, request: HttpRequest | None) -> None:
    """The person removes one of their linked identities (from the security centre): never
    their last way in (no password, no other link)."""
    if account.user_id != user.pk:
        raise IdentityRemovalRefused("not this person's identity")
    others = SocialAccount.objects.filter(user_id=user.pk).exclude(pk=account.pk).exists()
    if not others and not user.has_usable_password():
        raise IdentityRemovalRefused("last way to sign in")
    account.delete()
    record_unlink(request=request, account=account)
