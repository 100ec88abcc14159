"""The address an administrator typed is trusted: recorded as verified and primary.

Below both the user model's manager (users it creates sign in at once) and `accounts.services`
(the admin's changes), importing neither.
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress


def record_trusted_email(*, user: Any, previous_email: str = "") -> None:
    """Store the address an administrator (or the seed API) typed as verified and primary.

    Such users sign in at once; only self-signed-up addresses go through allauth's
    verification. When the administrator replaced an address, the old one stops being a way
    to sign in or to receive reset links. An address another account already verified is left
    alone (the admin form refuses duplicates; the seed API does not check).
    """
    email = (user.email or "").strip().lower()
    previous = (previous_email or "").strip().lower()
    if previous and previous != email:
        EmailAddress.objects.filter(user=user, email=previous).delete()
    if not email:
        return
    if EmailAddress.objects.filter(email=email, verified=True).exclude(user=user).exists():
        return
    address, _ = EmailAddress.objects.get_or_create(user=user, email=email)
    EmailAddress.objects.filter(user=user, primary=True).exclude(pk=address.pk).update(
        primary=False
    )
    if not (address.verified and address.primary):
        address.verified = True
        address.primary = True
        address.save(update_fields=["verified", "primary"])
