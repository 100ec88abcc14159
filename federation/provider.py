"""allauth's provider registry reads each installed app's `provider` module: ours is the
OpenID Connect provider of `federation.upstream`."""

from federation.upstream.provider import UpstreamOIDCProvider

provider_classes = [UpstreamOIDCProvider]
