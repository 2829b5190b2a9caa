"""Who may reach the administration: every route × anonymous, editor, manager, admin.

Admins may do everything; managers see every page but get no forms, and every POST of theirs
is a 403; editors get 403; visitors are sent to the login page. The pages an email links to
(choose a password) and "Forgot your password?" are the only ones open to all.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from desk.admin import PUBLIC_ENDPOINTS
from desk.extensions import db
from tests.admin.conftest import Cast, log_in, post

ROLES = ("anonymous", "editor", "manager", "admin")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    #: Status for an admin (a POST that worked redirects back to its page).
    admin: int
    data: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


PAGES = [
    "/desk/admin/",
    "/desk/admin/users",
    "/desk/admin/users/{editor}",
    "/desk/admin/countries",
    "/desk/admin/countries/ML",
    "/desk/admin/countries/NE",
    "/desk/admin/profiles",
    "/desk/admin/profiles/{profile}",
    "/desk/admin/settings",
]
ACTIONS = [
    Route(
        "POST",
        "/desk/admin/users",
        302,
        (("name", "Awa"), ("email", "awa@desk.test"), ("role", "editor")),
    ),
    Route("POST", "/desk/admin/users/{editor}/role", 302, (("role", "manager"),)),
    Route("POST", "/desk/admin/users/{editor}/deactivate", 302),
    Route("POST", "/desk/admin/users/{editor}/reactivate", 302),
    Route("POST", "/desk/admin/users/{editor}/invitation", 302),
    Route("POST", "/desk/admin/users/{editor}/password-reset", 302),
    Route("POST", "/desk/admin/countries/NE/editors", 302, (("user", "{editor}"),)),
    Route("POST", "/desk/admin/countries/ML/editors/{editor}/remove", 302),
    Route("POST", "/desk/admin/countries/ML/lead", 302, (("user", "{editor}"),)),
    Route("POST", "/desk/admin/countries/ML/auto-assign", 302, (("mode", "least_loaded"),)),
    Route(
        "POST",
        "/desk/admin/profiles",
        302,
        (("country", "NE"), ("topic", "Mine Ban Policy"), ("language", "en")),
    ),
    Route("POST", "/desk/admin/profiles/{profile}/topic", 302, (("topic", "Mine Action"),)),
    Route("POST", "/desk/admin/profiles/{profile}/publish", 302),
    Route("POST", "/desk/admin/profiles/{profile}/unpublish", 302),
    Route("POST", "/desk/admin/profiles/{profile}/sections", 302, (("heading", "Casualties"),)),
    Route("POST", "/desk/admin/sections/{section}/heading", 302, (("heading", "Summary"),)),
    Route("POST", "/desk/admin/sections/{section}/up", 302),
    Route("POST", "/desk/admin/sections/{section}/down", 302),
    Route("POST", "/desk/admin/settings", 302, (("DESK_UPLOAD_MAX_FILES", "3"),)),
    Route("POST", "/desk/admin/settings/DESK_UPLOAD_MAX_FILES/reset", 302),
]
ROUTES = [Route("GET", path, 200) for path in PAGES] + ACTIONS


@pytest.fixture
def places(cast: Cast, create_profile) -> dict[str, str]:
    profile = create_profile("ML", sections=[("Overview", "Text."), ("Stockpiling", "None.")])
    return {
        "editor": str(cast.editor.id),
        "profile": str(profile.id),
        "section": str(profile.sections[0].id),
    }


def _settings_form(client) -> dict[str, str]:
    """Every settings field as the page shows it, so a POST of one change is a full form."""
    from desk.admin.operations import effective_values
    from desk.admin.runtime import BY_NAME

    with client.application.app_context():
        values = effective_values()
    return {name: str(BY_NAME[name].to_display(value)) for name, value in values.items()}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_admin_routes_answer_each_role_as_expected(client, cast, places, route, role):
    user = cast.user(role)
    if user is not None:
        log_in(client, user)
    path = route.path.format(**places)
    data = {key: value.format(**places) for key, value in route.data}
    if route.method == "GET":
        response = client.get(path)
    else:
        if path == "/desk/admin/settings":
            data = {**_settings_form(client), **data}
        response = post(client, path, data)
    expected = {"anonymous": 302, "editor": 403, "manager": 403, "admin": route.admin}[role]
    if role == "manager" and route.method == "GET":
        expected = 200
    assert response.status_code == expected, response.get_data(as_text=True)[:400]
    if role == "anonymous":
        assert urlsplit(response.headers["Location"]).path == "/login"
    if route.method == "GET" and response.status_code == 200:
        html = response.get_data(as_text=True)
        if role == "manager":
            assert 'method="post" action="/desk/admin' not in html
            assert "only admins can change it" in html
        else:
            assert "only admins can change it" not in html


def test_manager_pages_show_no_admin_forms_but_admin_pages_do(client, cast, places):
    log_in(client, cast.admin)
    html = client.get(f"/desk/admin/profiles/{places['profile']}").get_data(as_text=True)
    assert f'action="/desk/admin/sections/{places["section"]}/heading"' in html
    log_in(client, cast.manager)
    html = client.get(f"/desk/admin/profiles/{places['profile']}").get_data(as_text=True)
    assert "/heading" not in html
    assert "Overview" in html


@pytest.mark.parametrize("role", ROLES)
def test_the_account_pages_are_open_to_everyone(client, cast, role):
    user = cast.user(role)
    if user is not None:
        log_in(client, user)
    assert client.get("/desk/password/forgot").status_code == 200
    assert client.get("/desk/invitation/not-a-token").status_code == 404
    assert client.get("/desk/password/reset/not-a-token").status_code == 404
    assert client.get("/desk/admin/static/admin.css").status_code == 200


def test_every_admin_route_is_in_the_matrix(app):
    """A route added later without a row here fails, so none escapes the access check's test."""
    tested = {(r.method, r.path.split("{")[0].rstrip("/")) for r in ROUTES}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            prefix = rule.rule.split("<")[0].rstrip("/")
            assert any(m == method and p.startswith(prefix) for m, p in tested), (
                f"{method} {rule.rule} has no row in the access matrix"
            )


def test_a_deactivated_admin_keeps_no_access(client, cast):
    log_in(client, cast.admin)
    cast.admin.is_active = False
    db.session.commit()
    response = client.get("/desk/admin/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
