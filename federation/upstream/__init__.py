"""Our OpenID Connect provider for allauth: allauth's, with the ID token verified in full and a
nonce (`federation.id_tokens`), its login and callback on our URLs."""
