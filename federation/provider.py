"""allauth's provider registry reads each installed app's `provider` module: ours is the
OpenID Connect provider of `federation.upstream`
and the SAML provider of `federation.saml`."""

from federation.saml.provider import UpstreamSAMLProvider
from federation.upstream.provider import UpstreamOIDCProvider

provider_classes = [UpstreamOIDCProvider, UpstreamSAMLProvider]
