"""Which local session belongs to which IdP session, so a back-channel logout can end it."""

from django.conf import settings
from django.db import models


class OidcSession(models.Model):
    """One signed-in browser session of this app and the IdP's `sub`/`sid` it came from."""

    session_key = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    sub = models.CharField(max_length=255, db_index=True)
    sid = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.sid or 'no sid'})"
