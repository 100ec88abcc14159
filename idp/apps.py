"""The admin's app config: Django's admin with the identity admin console as its default site."""

from django.contrib.admin.apps import AdminConfig


class IdentityAdminConfig(AdminConfig):
    """Listed in INSTALLED_APPS in place of "django.contrib.admin" (same name and label)."""

    default_site = "idp.admin_site.IdentityAdminSite"
