"""The OpenID Connect / OAuth 2 protocol engine: DOT's views and validator with our policy,
tokens, claims, keys, the token store and both logout channels (ARCHITECTURE.md)."""
