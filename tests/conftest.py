"""Shared fixtures: users, clients, and the real-browser harness."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

PASSWORD = "correct horse battery staple"


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", PASSWORD, first_name="Alice", last_name="Liddell"
    )


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
