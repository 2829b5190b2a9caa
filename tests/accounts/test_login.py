import pytest

from desk.accounts.models import Role
from desk.core.audit import AuditEvent
from desk.extensions import db
from tests.conftest import csrf_token_from

STAFF_PATHS = ["/desk/"]


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_staff_route_without_login_redirects_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/login?next={path.replace('/', '%2F')}")


def test_login_lands_on_staff_home_and_is_audited(client, auth, create_staff):
    user = create_staff(Role.EDITOR, email="amina@desk.test", countries=("ML",))
    response = auth.login("Amina@Desk.test")
    assert response.status_code == 302
    assert response.headers["Location"] == "/desk/"
    home = client.get("/desk/").get_data(as_text=True)
    assert "Hello, Staff editor" in home
    assert "Mali" in home
    actions = db.session.scalars(db.select(AuditEvent.action).where(AuditEvent.actor_id == user.id))
    assert list(actions) == ["user.logged_in"]


def test_login_returns_to_the_page_asked_for(client, auth, create_staff):
    create_staff(email="next@desk.test")
    page = client.get("/login?next=/desk/")
    token = csrf_token_from(page.get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "email": "next@desk.test",
            "password": "correct horse battery staple",
            "next": "/desk/",
            "csrf_token": token,
        },
    )
    assert response.headers["Location"] == "/desk/"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"]
)
def test_login_never_redirects_off_site(client, create_staff, target):
    create_staff(email="safe@desk.test")
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "email": "safe@desk.test",
            "password": "correct horse battery staple",
            "next": target,
            "csrf_token": token,
        },
    )
    assert response.headers["Location"] == "/desk/"


def test_wrong_password_and_unknown_email_get_the_same_generic_message(auth, create_staff):
    create_staff(email="known@desk.test")
    wrong = auth.login("known@desk.test", "wrong password").get_data(as_text=True)
    unknown = auth.login("nobody@desk.test", "wrong password").get_data(as_text=True)
    message = "That email and password do not match an active account."
    assert message in wrong
    assert message in unknown


def test_deactivated_user_cannot_log_in(auth, create_staff):
    user = create_staff(email="gone@desk.test")
    user.is_active = False
    db.session.commit()
    response = auth.login("gone@desk.test")
    assert response.status_code == 200
    assert "do not match an active account" in response.get_data(as_text=True)


def test_repeated_failed_logins_are_rate_limited(app, auth, create_staff):
    create_staff(email="target@desk.test")
    limit = int(app.config["DESK_LOGIN_RATE_LIMIT"].split()[0])
    statuses = [auth.login("target@desk.test", "guess").status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [200] * limit
    assert statuses[limit] == 429


def test_successful_logins_do_not_count_against_the_limit(app, auth, create_staff):
    create_staff(email="often@desk.test")
    limit = int(app.config["DESK_LOGIN_RATE_LIMIT"].split()[0])
    for _ in range(limit + 2):
        assert auth.login("often@desk.test").status_code == 302
        auth.logout()


def test_post_without_csrf_token_is_refused(client, create_staff):
    create_staff(email="csrf@desk.test")
    response = client.post(
        "/login", data={"email": "csrf@desk.test", "password": "correct horse battery staple"}
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_logout_needs_a_post_with_csrf(client, auth, create_staff):
    create_staff(email="out@desk.test")
    auth.login("out@desk.test")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert auth.logout().headers["Location"] == "/login"
    assert client.get("/desk/").status_code == 302


def test_session_cookie_is_httponly_and_lax(client, auth, create_staff):
    create_staff(email="cookie@desk.test")
    response = auth.login("cookie@desk.test")
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_production_cookies_are_secure(database_url, tmp_path):
    from desk import create_app

    app = create_app(
        {
            "DESK_ENV": "production",
            "DESK_SECRET_KEY": "s" * 32,
            "DESK_DATABASE_URL": database_url,
            "DESK_INSTANCE_PATH": str(tmp_path),
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_production_without_secret_key_fails_clearly(database_url, tmp_path):
    from desk import create_app

    with pytest.raises(RuntimeError, match="DESK_SECRET_KEY must be set"):
        create_app(
            {
                "DESK_ENV": "production",
                "DESK_DATABASE_URL": database_url,
                "DESK_INSTANCE_PATH": str(tmp_path),
            }
        )
