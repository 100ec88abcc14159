"""Registration rules for client apps, in one place: redirect and logout URIs, scopes, lifetimes,
SAML endpoints and metadata URLs.

Used by the admin forms, the services, the `clients` command and registry import, so an unsafe
registration is refused the same way everywhere, with one clear message per field.
Sources: RFC 6749 §3.1.2, RFC 9700 §2.1 and §4.1 (exact, https redirect URIs), RFC 8252 §7.1 and
§7.3 (native apps: reverse-domain private-use schemes, http only on loopback), OpenID Connect
Back-Channel Logout 1.0 §2.2 and Front-Channel Logout 1.0 §2.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Hosts on which plain http is acceptable (RFC 8252 §7.3 / §8.3); the issue names exactly these.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Schemes that run code or read local files in the browser: never a redirect target.
DANGEROUS_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})
# RFC 3986 §3.1 scheme syntax; RFC 8252 §7.1 asks for a reverse domain name (at least one dot).
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_REVERSE_DOMAIN_RE = re.compile(r"^[a-z][a-z0-9\-]*(\.[a-z0-9][a-z0-9\-]*)+$")
# RFC 3986 allows none of these unescaped; their presence means a malformed or smuggled URI.
_FORBIDDEN_CHARS_RE = re.compile(r"[\s\x00-\x1f\x7f<>\"\\^`{|}]")

MIN_LIFETIME_SECONDS = 60
MAX_ACCESS_TOKEN_SECONDS = 24 * 3600
MAX_ID_TOKEN_SECONDS = 24 * 3600
MAX_REFRESH_TOKEN_SECONDS = 365 * 24 * 3600
# A refresh token unused this long dies (IDP_REFRESH_TOKEN_IDLE_SECONDS overrides it).
DEFAULT_REFRESH_IDLE_SECONDS = 14 * 24 * 3600
# Scopes that speak about a signed-in person: never registered for nor granted to a machine
# (the client-credentials grant refuses them too, oauth_clients/oidc/token_policy.py).
USER_SCOPES = frozenset({"openid", "profile", "email", "groups", "offline_access"})
# The admin API's scopes (adminapi/): for machine-to-machine services only, never for an app
# that signs people in (a person's token must never administer the IdP).
ADMIN_SCOPES = frozenset(
    {
        "admin:users",
        "admin:users:read",
        "admin:clients",
        "admin:clients:read",
        "admin:audit",
        "admin:audit:read",
        "admin:integrations",
        "admin:integrations:read",
        "admin:superusers",
    }
)

Resolver = Callable[[str], list[str]]


def split_uris(value: str | Iterable[str] | None) -> list[str]:
    """A space/newline separated text (or a list) as a list of URIs, order kept, duplicates gone."""
    if value is None:
        return []
    items = value.split() if isinstance(value, str) else [str(v).strip() for v in value]
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)


def is_loopback_host(host: str) -> bool:
    """127.0.0.1, [::1] and localhost: the only hosts an http redirect URI may name."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS


def _common_uri_problem(uri: str) -> str | None:
    """Problems every registered URI must be free of, whatever its use."""
    if _FORBIDDEN_CHARS_RE.search(uri):
        return _("contains spaces or characters that are not allowed in a URI")
    if "*" in uri:
        return _("wildcards (*) are not allowed: register each exact URI (RFC 9700 §4.1.3)")
    if "#" in uri:
        return _("must not contain a fragment (#…) (RFC 6749 §3.1.2)")
    scheme, sep, _rest = uri.partition(":")
    if not sep or not scheme:
        return _("must be an absolute URI starting with https://")
    if scheme.lower() in DANGEROUS_SCHEMES:
        return _("the %(scheme)s: scheme is never allowed") % {"scheme": scheme.lower()}
    if not _SCHEME_RE.match(scheme.lower()):
        return _("must be an absolute URI starting with https://")
    return None


def _web_uri_problem(uri: str) -> str | None:
    """Rules for an http(s) URI: absolute, https unless loopback, no userinfo, valid port."""
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return _("is not a valid URI (check the host and port)")
    del port
    if not uri[len(parts.scheme) :].startswith("://"):
        return _("must be an absolute URI starting with https://")
    if "@" in parts.netloc:
        return _("must not contain a user name or password (user@host)")
    host = parts.hostname or ""
    if not host:
        return _("must name a host, e.g. https://app.example.com/callback")
    if parts.scheme == "http" and not is_loopback_host(host):
        return _(
            "must use https; http is allowed only for 127.0.0.1, [::1] and localhost "
            "(RFC 8252 §7.3)"
        )
    return None


def redirect_uri_problem(uri: str, *, native: bool) -> str | None:
    """Why `uri` may not be registered as a (post-logout) redirect URI, or None when it may."""
    problem = _common_uri_problem(uri)
    if problem:
        return problem
    scheme = uri.partition(":")[0].lower()
    if scheme in {"http", "https"}:
        return _web_uri_problem(uri)
    # Any other scheme is a private-use scheme (RFC 8252 §7.1).
    if not native:
        return _(
            "must use https (a custom scheme like %(scheme)s: is allowed only for native apps)"
        ) % {"scheme": scheme}
    if not _REVERSE_DOMAIN_RE.match(scheme):
        return _(
            "a native app's custom scheme must be a reverse domain name you control, "
            "e.g. com.example.app:/callback (RFC 8252 §7.1)"
        )
    rest = uri.partition(":")[2]
    if rest.startswith("//"):
        authority = rest[2:].split("/", 1)[0]
        if "@" in authority:
            return _("must not contain a user name or password (user@host)")
        if not authority:
            # "scheme:///path" aliases "scheme:/path" (RFC 9700 §2.1 wants one exact form).
            return _("needs a path after the scheme, e.g. com.example.app:/callback")
    elif not rest.startswith("/") or not rest.strip("/"):
        return _("needs a path after the scheme, e.g. com.example.app:/callback")
    return None


def validate_redirect_uris(
    uris: str | Iterable[str] | None, *, native: bool, required: bool = False
) -> list[str]:
    """The URIs as a list, or ValidationError with one message per refused URI."""
    items = split_uris(uris)
    errors = []
    for uri in items:
        problem = redirect_uri_problem(uri, native=native)
        if problem:
            errors.append(ValidationError(f"{uri}: {problem}", code="invalid_uri"))
    if required and not items:
        errors.append(ValidationError(_("Register at least one redirect URI."), code="required"))
    if errors:
        raise ValidationError(errors)
    return items


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes whose last 32 bits are an IPv4 address a translator or the kernel may reach:
# RFC 6052 §2.1 NAT64 well-known prefix, RFC 8215 local-use NAT64 prefix (its /96 form),
# RFC 4291 §2.5.5.1 IPv4-compatible (deprecated; ::/96 less :: and ::1), RFC 2765 §2.1
# IPv4-translated (SIIT).
_IPV4_EMBEDDING_NETWORKS = tuple(
    ipaddress.IPv6Network(net)
    for net in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)
# RFC 8215 §2: the local-use NAT64 prefix is never routed on the internet.
_LOCAL_USE_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4_addresses(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for through a translation or tunnel: mapped
    (RFC 4291 §2.5.5.2), NAT64 (RFC 6052, RFC 8215), IPv4-compatible, SIIT, 6to4 (RFC 3056) and
    Teredo (RFC 4380: server and client). A request to the IPv6 form reaches the IPv4 one."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if int(address) > 1 and any(address in net for net in _IPV4_EMBEDDING_NETWORKS):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_is_internal(address: IPAddress) -> bool:
    """Whether a request to `address` may reach a private, loopback, link-local, shared (CGNAT)
    or reserved network, directly or through an IPv4 address the IPv6 form carries.

    The one check for registration (`host_is_internal`) and for the back-channel sender
    (`oauth_clients.outbound.check_destination`, through `host_is_internal`).
    """
    if isinstance(address, ipaddress.IPv6Address) and address in _LOCAL_USE_NAT64:
        return True
    for candidate in [address, *embedded_ipv4_addresses(address)]:
        # Not globally routable covers private, loopback, link-local, shared, reserved.
        if not candidate.is_global or candidate.is_multicast:
            return True
    return False


# Shown to users (the consent page, connected apps, My apps); `initiate_login_uri` is the app's
# sign-in start page (OIDC Core §4), opened from the My apps page: https, http only on loopback.
INFO_URI_FIELDS = ("logo_uri", "client_uri", "policy_uri", "tos_uri", "initiate_login_uri")


def info_uri_problem(uri: str) -> str | None:
    """Logo, home page, policy and terms links are shown to users: https pages only."""
    if not uri:
        return None
    problem = _common_uri_problem(uri)
    if problem:
        return problem
    if uri.partition(":")[0].lower() not in {"http", "https"}:
        return _("must be an https:// address")
    return _web_uri_problem(uri)


def resolve_host(host: str) -> list[str]:
    """Every address `host` resolves to (A and AAAA). Empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def host_is_internal(host: str, *, resolver: Resolver | None = None) -> tuple[bool, str]:
    """Whether `host` is (or resolves to) a private, loopback or link-local address.

    Returns (internal, explanation). A name that does not resolve counts as internal: the check
    fails closed. The sender of back-channel calls must repeat this check at send time, because
    DNS can change after registration.
    """
    bare = host.strip("[]").lower()
    if bare == "localhost" or bare.endswith(".localhost"):
        return True, _("%(host)s is a loopback name") % {"host": host}
    try:
        literal = ipaddress.ip_address(bare)
    except ValueError:
        literal = None
    if literal is not None:
        if address_is_internal(literal):
            return True, _("%(host)s is a private, loopback or link-local address") % {"host": host}
        return False, ""
    addresses = (resolver or resolve_host)(bare)
    if not addresses:
        return True, _("%(host)s does not resolve, so it cannot be checked") % {"host": host}
    for value in addresses:
        try:
            address = ipaddress.ip_address(value.split("%", 1)[0])
        except ValueError:
            return True, _("%(host)s resolves to an unreadable address") % {"host": host}
        if address_is_internal(address):
            return True, _("%(host)s resolves to the internal address %(ip)s") % {
                "host": host,
                "ip": value,
            }
    return False, ""


def logout_uri_problem(
    uri: str,
    *,
    backchannel: bool,
    allow_private_network: bool,
    resolver: Resolver | None = None,
) -> str | None:
    """Why `uri` may not be a back-/front-channel logout URI, or None when it may."""
    problem = _common_uri_problem(uri)
    if problem:
        return problem
    scheme = uri.partition(":")[0].lower()
    if scheme not in {"http", "https"}:
        return _("must use https (http only for 127.0.0.1, [::1] and localhost)")
    problem = _web_uri_problem(uri)
    if problem:
        return problem
    if backchannel and not allow_private_network:
        internal, why = host_is_internal(urlsplit(uri).hostname or "", resolver=resolver)
        if internal:
            return _(
                "the IdP would call an internal network address (%(why)s); tick "
                "'allow private-network logout URIs' if this is an internal app"
            ) % {"why": why}
    return None


def saml_endpoint_problem(uri: str) -> str | None:
    """Why `uri` may not be a SAML app's assertion consumer or logout endpoint, or None.

    The browser carries assertions there (SAML 2.0 Bindings §3.5, Profiles §4.1.4.5): https
    only, http for 127.0.0.1, [::1] and localhost, exact, no fragment — as for redirect URIs.
    """
    problem = _common_uri_problem(uri)
    if problem:
        return problem
    if uri.partition(":")[0].lower() not in {"http", "https"}:
        return _("must use https (http only for 127.0.0.1, [::1] and localhost)")
    return _web_uri_problem(uri)


def metadata_url_problem(
    uri: str, *, allow_private_network: bool, resolver: Resolver | None = None
) -> str | None:
    """Why the IdP may not fetch a SAML app's metadata from `uri`, or None when it may.

    The IdP itself calls it, so the back-channel rules apply: https (http only on loopback) and
    no private-network address unless the app is allowed them.
    """
    problem = saml_endpoint_problem(uri)
    if problem:
        return problem
    if not allow_private_network:
        internal, why = host_is_internal(urlsplit(uri).hostname or "", resolver=resolver)
        if internal:
            return _(
                "the IdP would call an internal network address (%(why)s); allow private-network "
                "addresses if this is an internal app"
            ) % {"why": why}
    return None


def validate_logout_uri(
    uri: str | None,
    *,
    backchannel: bool,
    allow_private_network: bool = False,
    resolver: Resolver | None = None,
) -> str:
    """The URI stripped ("" when empty), or ValidationError with the reason."""
    value = (uri or "").strip()
    if not value:
        return ""
    problem = logout_uri_problem(
        value,
        backchannel=backchannel,
        allow_private_network=allow_private_network,
        resolver=resolver,
    )
    if problem:
        raise ValidationError(f"{value}: {problem}", code="invalid_uri")
    return value


def _provider_settings() -> dict[str, Any]:
    provider: dict[str, Any] = settings.OAUTH2_PROVIDER
    return provider


def known_scopes() -> dict[str, str]:
    scopes: dict[str, str] = _provider_settings().get("SCOPES", {})
    return dict(scopes)


def validate_scopes(scopes: str | Iterable[str] | None, *, sign_in: bool) -> list[str]:
    """Known scopes only. A sign-in (OIDC) client needs `openid`; a machine-to-machine service
    acts for no person, so it gets no user scopes (the token side refuses them anyway)."""
    items = split_uris(scopes)
    unknown = [scope for scope in items if scope not in known_scopes()]
    if unknown:
        raise ValidationError(
            _("Unknown scopes: %(scopes)s. Known scopes: %(known)s.")
            % {"scopes": ", ".join(unknown), "known": ", ".join(known_scopes())},
            code="unknown_scope",
        )
    if not sign_in:
        personal = sorted(set(items) & USER_SCOPES)
        if personal:
            raise ValidationError(
                _(
                    "A machine-to-machine service acts for no person: it cannot have the user "
                    "scopes %(scopes)s."
                )
                % {"scopes": ", ".join(personal)},
                code="user_scope",
            )
        return sorted(items)
    admin = sorted(set(items) & ADMIN_SCOPES)
    if admin:
        raise ValidationError(
            _(
                "The admin API scopes %(scopes)s are for machine-to-machine services only: "
                "register a service for automation."
            )
            % {"scopes": ", ".join(admin)},
            code="admin_scope",
        )
    if "openid" not in items:
        raise ValidationError(
            _("An app that signs users in needs the openid scope."), code="openid_required"
        )
    return sorted(items)


LIFETIME_BOUNDS: dict[str, int] = {
    "access_token_lifetime": MAX_ACCESS_TOKEN_SECONDS,
    "id_token_lifetime": MAX_ID_TOKEN_SECONDS,
    "refresh_token_idle_lifetime": MAX_REFRESH_TOKEN_SECONDS,
    "refresh_token_absolute_lifetime": MAX_REFRESH_TOKEN_SECONDS,
}


def default_lifetimes() -> dict[str, int | None]:
    """The provider-wide lifetimes a client gets when its own fields are empty."""
    provider = _provider_settings()
    idle = getattr(settings, "IDP_REFRESH_TOKEN_IDLE_SECONDS", DEFAULT_REFRESH_IDLE_SECONDS)
    return {
        "access_token_lifetime": provider.get("ACCESS_TOKEN_EXPIRE_SECONDS"),
        "id_token_lifetime": provider.get("ID_TOKEN_EXPIRE_SECONDS"),
        # Never above the absolute lifetime.
        "refresh_token_idle_lifetime": idle,
        "refresh_token_absolute_lifetime": provider.get("REFRESH_TOKEN_EXPIRE_SECONDS"),
    }


def lifetime_errors(values: Mapping[str, int | None]) -> dict[str, list[str]]:
    """Per-field errors for token lifetimes (seconds; None means the provider default)."""
    errors: dict[str, list[str]] = {}
    for field, maximum in LIFETIME_BOUNDS.items():
        value = values.get(field)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            errors[field] = [_("Enter a whole number of seconds.")]
        elif value < MIN_LIFETIME_SECONDS or value > maximum:
            errors[field] = [
                _("Must be between %(min)d and %(max)d seconds.")
                % {"min": MIN_LIFETIME_SECONDS, "max": maximum}
            ]
    idle = values.get("refresh_token_idle_lifetime")
    absolute = values.get("refresh_token_absolute_lifetime")
    if (
        isinstance(idle, int)
        and isinstance(absolute, int)
        and idle > absolute
        and "refresh_token_idle_lifetime" not in errors
    ):
        errors["refresh_token_idle_lifetime"] = [
            _("The idle lifetime cannot be longer than the absolute lifetime.")
        ]
    return errors


def registration_errors(
    *,
    kind: str,
    redirect_uris: str | Iterable[str] | None,
    post_logout_redirect_uris: str | Iterable[str] | None,
    scopes: str | Iterable[str] | None,
    backchannel_logout_uri: str = "",
    frontchannel_logout_uri: str = "",
    allow_private_network: bool = False,
    info_uris: Mapping[str, str] | None = None,
    lifetimes: Mapping[str, int | None] | None = None,
    resolver: Resolver | None = None,
) -> dict[str, list[str]]:
    """Every rule at once, as {field: [messages]} (empty when the registration is safe)."""
    from oauth_clients.models import Client  # the model module imports nothing from here

    errors: dict[str, list[str]] = {}
    if kind not in Client.Kind.values:
        errors["kind"] = [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(Client.Kind.values)}]
        return errors
    if kind == Client.Kind.SAML:
        return _saml_app_errors(
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            scopes=scopes,
            backchannel_logout_uri=backchannel_logout_uri,
            frontchannel_logout_uri=frontchannel_logout_uri,
            info_uris=info_uris,
            lifetimes=lifetimes,
        )
    native = kind == Client.Kind.NATIVE
    signs_users_in = kind not in (Client.Kind.SERVICE, Client.Kind.API)
    # RFC 8628: a device app signs people in through another browser and polls for its tokens:
    # nothing is ever redirected to it and it has no browser session to end.
    device = kind == Client.Kind.DEVICE

    def collect(field: str, check: Callable[[], object]) -> None:
        try:
            check()
        except ValidationError as exc:
            errors[field] = list(exc.messages)

    if device:
        for field, value in (
            ("redirect_uris", redirect_uris),
            ("post_logout_redirect_uris", post_logout_redirect_uris),
        ):
            if split_uris(value):
                errors[field] = [
                    _("A device app gets its tokens by polling: leave redirect URIs empty.")
                ]
    elif signs_users_in:
        collect(
            "redirect_uris",
            lambda: validate_redirect_uris(redirect_uris, native=native, required=True),
        )
        collect(
            "post_logout_redirect_uris",
            lambda: validate_redirect_uris(post_logout_redirect_uris, native=native),
        )
    else:
        for field, value in (
            ("redirect_uris", redirect_uris),
            ("post_logout_redirect_uris", post_logout_redirect_uris),
        ):
            if split_uris(value):
                errors[field] = [
                    _(
                        "A machine-to-machine service does not sign users in: "
                        "leave redirect URIs empty."
                    )
                ]
    collect("allowed_scopes", lambda: validate_scopes(scopes, sign_in=signs_users_in))
    collect(
        "backchannel_logout_uri",
        lambda: validate_logout_uri(
            backchannel_logout_uri,
            backchannel=True,
            allow_private_network=allow_private_network,
            resolver=resolver,
        ),
    )
    collect(
        "frontchannel_logout_uri",
        lambda: validate_logout_uri(frontchannel_logout_uri, backchannel=False),
    )
    if not signs_users_in:
        for field, value in (
            ("backchannel_logout_uri", backchannel_logout_uri),
            ("frontchannel_logout_uri", frontchannel_logout_uri),
        ):
            if value and field not in errors:
                errors[field] = [_("A machine-to-machine service has no user sessions to end.")]
    for field, value in (info_uris or {}).items():
        problem = info_uri_problem(value or "")
        if problem:
            errors[field] = [f"{value}: {problem}"]
    if device and frontchannel_logout_uri and "frontchannel_logout_uri" not in errors:
        errors["frontchannel_logout_uri"] = [
            _("A device app has no browser page to sign out in: leave this empty.")
        ]
    if device and (info_uris or {}).get("initiate_login_uri"):
        errors.setdefault("initiate_login_uri", []).append(
            _("A device app is started on the device, not from a browser: leave this empty.")
        )
    if not signs_users_in and (info_uris or {}).get("initiate_login_uri"):
        errors.setdefault("initiate_login_uri", []).append(
            _("A machine-to-machine service signs no one in: leave the sign-in start URL empty.")
        )
    errors.update(lifetime_errors(lifetimes or {}))
    return errors


def _saml_app_errors(
    *,
    redirect_uris: str | Iterable[str] | None,
    post_logout_redirect_uris: str | Iterable[str] | None,
    scopes: str | Iterable[str] | None,
    backchannel_logout_uri: str,
    frontchannel_logout_uri: str,
    info_uris: Mapping[str, str] | None,
    lifetimes: Mapping[str, int | None] | None,
) -> dict[str, list[str]]:
    """A SAML app's OAuth-side fields: its endpoints are its service provider's (the SAML
    rules: `oauth_clients.saml_metadata`); its scopes say which claims it receives as
    attributes; no redirect or logout URIs, no token lifetimes."""
    errors: dict[str, list[str]] = {}
    oauth_only = _("A SAML app has no OAuth redirect or logout URIs: leave this empty.")
    for field, value in (
        ("redirect_uris", redirect_uris),
        ("post_logout_redirect_uris", post_logout_redirect_uris),
        ("backchannel_logout_uri", backchannel_logout_uri),
        ("frontchannel_logout_uri", frontchannel_logout_uri),
    ):
        if split_uris(value):
            errors[field] = [oauth_only]
    try:
        validate_scopes(scopes, sign_in=True)
    except ValidationError as exc:
        errors["allowed_scopes"] = list(exc.messages)
    for field, uri in (info_uris or {}).items():
        problem = info_uri_problem(uri or "")
        if problem:
            errors[field] = [f"{uri}: {problem}"]
    for field, seconds in (lifetimes or {}).items():
        if seconds is not None:
            errors[field] = [_("A SAML app gets no OAuth tokens: leave the lifetime empty.")]
    return errors
