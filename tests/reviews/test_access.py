"""Every review route: login required; another country's objects do not exist (404)."""

from __future__ import annotations

import pytest

from desk.accounts.models import Role
from tests.conftest import csrf_token_from

#: (method, path) with {task}, {revision}, {old}, {section}, {profile}, {feedback} filled in.
OBJECT_ROUTES = [
    ("GET", "/desk/tasks/{task}"),
    ("GET", "/desk/tasks/{task}/edit"),
    ("POST", "/desk/tasks/{task}/edit"),
    ("POST", "/desk/tasks/{task}/cancel"),
    ("POST", "/desk/tasks/{task}/section"),
    ("POST", "/desk/tasks/{task}/revise"),
    ("GET", "/desk/tasks/new?section={section}"),
    ("GET", "/desk/tasks/new?profile={profile}"),
    ("GET", "/desk/tasks/new?feedback={feedback}"),
    ("POST", "/desk/tasks/new?feedback={feedback}"),
    ("GET", "/desk/revisions/{revision}"),
    ("GET", "/desk/revisions/{revision}/edit"),
    ("POST", "/desk/revisions/{revision}/edit"),
    ("POST", "/desk/revisions/{revision}/autosave"),
    ("GET", "/desk/revisions/{revision}/preview"),
    ("GET", "/desk/revisions/{revision}/conflict"),
    ("POST", "/desk/revisions/{revision}/approve"),
    ("POST", "/desk/revisions/{revision}/request-changes"),
    ("POST", "/desk/revisions/{revision}/rebase"),
    ("POST", "/desk/revisions/{revision}/withdraw"),
    ("POST", "/desk/revisions/{revision}/discard"),
    ("POST", "/desk/revisions/{old}/restore"),
    ("GET", "/desk/sections/{section}/history"),
    ("GET", "/desk/sections/{section}/compare?a={old}&b={revision}"),
    ("POST", "/desk/sections/{section}/draft"),
    ("GET", "/desk/profiles/{profile}"),
    ("GET", "/desk/profiles/{profile}/history"),
    ("POST", "/desk/profiles/{profile}/last-updated"),
    ("POST", "/desk/profiles/{profile}/reviewed"),
]
LIST_ROUTES = [
    ("GET", "/desk/tasks"),
    ("GET", "/desk/tasks?view=approval"),
    ("GET", "/desk/tasks/new"),
]


@pytest.fixture
def objects(profile, stockpiling, create_feedback, editor, open_task, draft_revision):
    item = create_feedback(profile, stockpiling)
    task = open_task(stockpiling, item)
    revision = draft_revision(task, editor, "New text.")
    return {
        "task": task.id,
        "revision": revision.id,
        "old": stockpiling.current_revision_id,
        "section": stockpiling.id,
        "profile": profile.id,
        "feedback": item.reference,
    }


def call(client, method, path, token):
    if method == "GET":
        return client.get(path)
    return client.post(path, data={"csrf_token": token})


@pytest.mark.parametrize(("method", "path"), OBJECT_ROUTES + LIST_ROUTES)
def test_every_route_needs_a_login(client, objects, method, path):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = call(client, method, path.format(**objects), token)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(("method", "path"), OBJECT_ROUTES)
def test_an_editor_of_another_country_sees_nothing(desk, create_staff, objects, method, path):
    desk.login(create_staff(Role.EDITOR, email="niger@desk.test", countries=("NE",), leads=("NE",)))
    response = call(desk.client, method, path.format(**objects), desk.token())
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [p for m, p in OBJECT_ROUTES if m == "GET" and "/edit" not in p and "conflict" not in p],
)
def test_an_editor_of_the_country_sees_every_page(desk, create_staff, objects, path):
    desk.login(create_staff(Role.EDITOR, countries=("ML",)))
    assert desk.get(path.format(**objects)).status_code == 200


def test_the_lists_never_show_another_countrys_work(desk, create_staff, objects):
    desk.login(create_staff(Role.EDITOR, email="niger@desk.test", countries=("NE",), leads=("NE",)))
    for view in ("mine", "countries", "overdue", "approval"):
        html = desk.get(f"/desk/tasks?view={view}&state=all").get_data(as_text=True)
        assert f"/desk/tasks/{objects['task']}" not in html
        assert f"/desk/revisions/{objects['revision']}" not in html
