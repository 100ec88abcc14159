"""The seed's three calls keep working unchanged on the custom user model."""

from http import HTTPStatus

from django.contrib.auth import authenticate, get_user_model, login
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory


def test_create_user_stores_a_user_who_can_sign_in(db):
    User = get_user_model()
    user = User.objects.create_user("Bill", "bills_email@example.com", "pw")
    stored = User.objects.get(username="Bill")
    assert stored.pk == user.pk
    assert stored.email == "bills_email@example.com"
    assert stored.check_password("pw")
    assert stored.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


def test_authenticate_returns_user_or_none(db):
    User = get_user_model()
    user = User.objects.create_user("Bill", "bills_email@example.com", "pw")
    assert authenticate(username="Bill", password="pw") == user
    assert authenticate(username="Bill", password="wrong") is None
    assert authenticate(username="Nobody", password="pw") is None


def test_login_starts_a_session(db, client):
    User = get_user_model()
    user = User.objects.create_user("Bill", "bills_email@example.com", "pw")
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.user = None
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    assert request.session["_auth_user_id"] == str(user.pk)

    # And through the test client, the same session is recognised by the web UI.
    assert client.login(username="Bill", password="pw")
    response = client.get("/accounts/password/change/")
    assert response.status_code == HTTPStatus.OK
