"""Upstream identity providers (identity brokering) on allauth's `socialaccount`."""
