"""Subscribing without an account: double opt-in by emailed link, manage and unsubscribe links.

The confirmation and manage links are read from the emails as they arrived at a real SMTP
server; nothing is taken from inside the app that a subscriber would not have.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner

from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.delivery import deliver_due
from desk.notify.models import Frequency, OutboxMessage, Subscription
from desk.notify.operations import end_unconfirmed
from desk.notify.tokens import make_unsubscribe_token
from tests.conftest import csrf_token_from
from tests.notify.helpers import links, parts, path_of, subscribe

SUBSCRIBE = "/profiles/mali/cluster-munition-ban-policy/subscribe"


@pytest.fixture
def mali(create_profile):
    return create_profile("ML")


def subscriptions(email: str) -> list[Subscription]:
    return list(
        db.session.scalars(
            sa.select(Subscription).where(Subscription.email == email).order_by(Subscription.id)
        )
    )


def outbox_count(kind: str | None = None) -> int:
    statement = sa.select(sa.func.count()).select_from(OutboxMessage)
    if kind:
        statement = statement.where(OutboxMessage.kind == kind)
    return db.session.scalar(statement)


def post_form(client, path, data, page_path=None):
    page = client.get(page_path or path)
    assert page.status_code == 200, page.status_code
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data})


def ask(client, email="reader@example.org", frequency="immediate", language="en"):
    response = post_form(
        client, SUBSCRIBE, {"email": email, "frequency": frequency, "language": language}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def confirmation_link(sink, email="reader@example.org") -> str:
    deliver_due()
    received = sink.to(email)
    assert received, "no confirmation email arrived"
    (link,) = links(received[-1], "/subscriptions/confirm/")
    return path_of(link)


# --------------------------------------------------------------------------- double opt-in


def test_the_form_asks_for_address_frequency_and_language(client, mali):
    page = client.get(SUBSCRIBE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Email me when this profile is updated" in html
    for value in ("immediate", "daily", "weekly"):
        assert f'value="{value}"' in html
    assert 'name="language"' in html
    assert (
        page.headers["Cache-Control"].startswith("no-store")
        or "no-store" in page.headers["Cache-Control"]
    )


def test_subscribing_needs_a_confirmation_from_the_emailed_link(client, mali, mail_to_sink):
    response = ask(client)
    assert "/subscriptions/check-your-email" in response.headers["Location"]
    assert "reader@example.org" in client.get(response.headers["Location"]).get_data(as_text=True)
    (pending,) = subscriptions("reader@example.org")
    assert pending.confirmed_at is None and not pending.is_active

    link = confirmation_link(mail_to_sink)
    (received,) = mail_to_sink.to("reader@example.org")
    assert received["Subject"] == "Please confirm your subscription"
    assert "Mali: Cluster Munition Ban Policy" in parts(received)["text/plain"]
    assert link in parts(received)["text/html"]

    # A link checker opening the link confirms nothing: the page only offers a button.
    page = client.get(link)
    assert page.status_code == 200
    assert "Confirm my subscription" in page.get_data(as_text=True)
    db.session.refresh(pending)
    assert pending.confirmed_at is None

    confirmed = post_form(client, link, {})
    assert confirmed.status_code == 303
    assert "/subscriptions/manage/" in confirmed.headers["Location"]
    db.session.refresh(pending)
    assert pending.is_active
    manage = client.get(confirmed.headers["Location"]).get_data(as_text=True)
    assert "your subscription is confirmed" in manage
    assert "Mali: Cluster Munition Ban Policy" in manage


def test_a_confirm_link_without_the_button_press_changes_nothing(client, mali, mail_to_sink):
    ask(client)
    link = confirmation_link(mail_to_sink)
    fresh = client.application.test_client()
    assert fresh.post(link, data={}).status_code == 303  # CSRF missing: back to the page
    (pending,) = subscriptions("reader@example.org")
    assert pending.confirmed_at is None


def test_an_expired_confirmation_link_gets_a_clear_page(client, mali, mail_to_sink, monkeypatch):
    ask(client)
    link = confirmation_link(mail_to_sink)
    later = int(time.time()) + 72 * 3600 + 5
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert "This link has expired" in html
    assert SUBSCRIBE in html  # a way to ask again
    assert "Traceback" not in html
    (pending,) = subscriptions("reader@example.org")
    assert pending.confirmed_at is None


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-3], lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:]]
)
def test_a_tampered_confirmation_link_gets_a_clear_page(client, mali, mail_to_sink, mangle):
    ask(client)
    link = confirmation_link(mail_to_sink)
    prefix, _, token = link.rpartition("/")
    for method in (client.get, client.post):
        page = method(f"{prefix}/{mangle(token)}", follow_redirects=True)
        assert page.status_code == 400
        assert "This link does not work" in page.get_data(as_text=True)
    (pending,) = subscriptions("reader@example.org")
    assert pending.confirmed_at is None


def test_a_link_made_for_another_purpose_does_not_confirm(client, mali):
    subscription = subscribe(mali, "reader@example.org")
    db.session.commit()
    token = make_unsubscribe_token([subscription.id])
    assert client.get(f"/subscriptions/confirm/{token}").status_code == 400


def test_the_form_shows_what_is_wrong_and_keeps_what_was_typed(client, mali):
    response = post_form(client, SUBSCRIBE, {"email": "not an address", "frequency": "daily"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "This does not look like an email address" in html
    assert 'value="not an address"' in html
    assert outbox_count() == 0


def test_the_honeypot_sends_nothing_but_looks_the_same(client, mali):
    response = post_form(
        client, SUBSCRIBE, {"email": "victim@example.org", "frequency": "daily", "website": "x"}
    )
    assert response.status_code == 303
    assert subscriptions("victim@example.org") == []
    assert outbox_count() == 0


def test_a_double_click_sends_one_confirmation(client, mali):
    ask(client)
    ask(client)
    assert len(subscriptions("reader@example.org")) == 1
    assert outbox_count("subscription.confirm") == 1


def test_subscribing_again_while_subscribed_changes_nothing_until_confirmed(
    client, mali, mail_to_sink
):
    active = subscribe(mali, "reader@example.org")
    db.session.commit()
    ask(client, frequency="weekly", language="fr")
    db.session.refresh(active)
    assert (active.frequency, active.language) == (Frequency.IMMEDIATE, "en")

    post_form(client, confirmation_link(mail_to_sink), {})
    (same,) = subscriptions("reader@example.org")
    assert same.id == active.id  # changed in place, not replaced
    assert (same.frequency, same.language) == (Frequency.WEEKLY, "fr")
    assert same.digested_until is not None  # the weekly digest starts now, not at confirmation


def test_the_page_and_the_email_speak_french_when_asked(client, mali, mail_to_sink):
    page = client.get(f"{SUBSCRIBE}?lang=fr")
    assert 'lang="fr"' in page.get_data(as_text=True)
    ask(client, language="fr")
    deliver_due()
    (received,) = mail_to_sink.to("reader@example.org")
    assert received["Subject"] == "Veuillez confirmer votre abonnement"
    assert "72 heures" in parts(received)["text/plain"]


def test_several_profiles_with_one_confirmation(client, create_profile, mail_to_sink):
    mali = create_profile("ML")
    laos = create_profile("LA")
    niger = create_profile("NE")
    response = post_form(
        client,
        "/subscriptions/countries",
        {
            "profiles": [str(mali.id), str(laos.id)],
            "email": "Reader@Example.org ",
            "frequency": "daily",
            "language": "en",
        },
    )
    assert response.status_code == 303
    deliver_due()
    (received,) = mail_to_sink.to("reader@example.org")
    text = parts(received)["text/plain"]
    assert "Mali: Cluster Munition Ban Policy" in text
    assert "Lao" in text
    assert niger.country.name not in text
    (link,) = links(received, "/subscriptions/confirm/")
    post_form(client, path_of(link), {})
    active = subscriptions("reader@example.org")
    assert {s.profile_id for s in active} == {mali.id, laos.id}
    assert all(s.is_active and s.frequency == Frequency.DAILY for s in active)


def test_the_countries_page_needs_at_least_one_profile(client, mali):
    response = post_form(
        client,
        "/subscriptions/countries",
        {"email": "reader@example.org", "frequency": "daily", "language": "en"},
    )
    assert response.status_code == 422
    assert "Please choose at least one profile." in response.get_data(as_text=True)


def test_requests_never_confirmed_are_ended_once_their_link_expired(client, mali):
    ask(client)
    (pending,) = subscriptions("reader@example.org")
    assert end_unconfirmed(now=utcnow() + timedelta(hours=71)) == 0
    assert end_unconfirmed(now=utcnow() + timedelta(hours=73)) == 1
    db.session.refresh(pending)
    assert pending.ended_reason == "never confirmed"
    assert pending.ended_at is not None
    ask(client)  # and the address may ask again
    assert len(subscriptions("reader@example.org")) == 2


def test_subscribe_requests_are_rate_limited_per_address(app, client, mali):
    app.config["DESK_SUBSCRIBE_RATE_LIMIT"] = "2 per hour"
    ask(client, email="one@example.org")
    ask(client, email="two@example.org")
    response = post_form(
        client, SUBSCRIBE, {"email": "three@example.org", "frequency": "immediate"}
    )
    assert response.status_code == 429


def test_an_unknown_profile_has_no_subscribe_page(client):
    assert client.get("/profiles/atlantis/nothing/subscribe").status_code == 404


# --------------------------------------------------------------------------- unsubscribe


def test_one_click_unsubscribe_by_post_without_cookies(app, mali):
    subscription = subscribe(mali, "reader@example.org")
    db.session.commit()
    token = make_unsubscribe_token([subscription.id])
    mail_client = app.test_client(use_cookies=False)
    response = mail_client.post(
        f"/unsubscribe/{token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    db.session.refresh(subscription)
    assert subscription.ended_at is not None
    assert subscription.ended_reason == "one-click"
    assert db.session.get(Subscription, subscription.id) is not None  # ended, not deleted

    again = mail_client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    db.session.refresh(subscription)
    assert subscription.ended_reason == "one-click"


def test_a_plain_get_of_the_unsubscribe_link_only_asks(client, mali):
    subscription = subscribe(mali, "reader@example.org")
    db.session.commit()
    path = f"/unsubscribe/{make_unsubscribe_token([subscription.id])}"
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Stop the emails to" in html
    assert f'action="{path}"' in html
    db.session.refresh(subscription)
    assert subscription.ended_at is None

    done = client.post(path)  # the page's own button: no CSRF token needed, no one-click body
    assert "You are unsubscribed" in done.get_data(as_text=True)
    db.session.refresh(subscription)
    assert subscription.ended_reason == "unsubscribed"
    assert "already unsubscribed" in client.get(path).get_data(as_text=True)


def test_a_tampered_unsubscribe_link_gets_a_clear_page(client, mali):
    subscription = subscribe(mali, "reader@example.org")
    db.session.commit()
    token = make_unsubscribe_token([subscription.id])
    for method in (client.get, client.post):
        page = method(f"/unsubscribe/{token[:-4]}xxxx")
        assert page.status_code == 400
        assert "This link does not work" in page.get_data(as_text=True)
    db.session.refresh(subscription)
    assert subscription.ended_at is None


# --------------------------------------------------------------------------- manage


def manage_path(client, mail_to_sink) -> str:
    ask(client)
    confirmed = post_form(client, confirmation_link(mail_to_sink), {})
    return confirmed.headers["Location"]


def test_the_manage_page_changes_frequency_and_ends(client, create_profile, mail_to_sink):
    create_profile("ML")
    path = manage_path(client, mail_to_sink)
    (subscription,) = subscriptions("reader@example.org")
    html = client.get(path).get_data(as_text=True)
    assert "reader@example.org" in html

    changed = post_form(
        client,
        f"{path}/{subscription.id}",
        {f"s{subscription.id}-frequency": "daily", f"s{subscription.id}-language": "fr"},
        page_path=path,
    )
    assert changed.status_code == 303
    db.session.refresh(subscription)
    assert (subscription.frequency, subscription.language) == (Frequency.DAILY, "fr")

    ended = post_form(client, f"{path}/{subscription.id}/end", {}, page_path=path)
    assert ended.status_code == 303
    db.session.refresh(subscription)
    assert subscription.ended_reason == "unsubscribed"
    assert "not subscribed to any profile" in client.get(path).get_data(as_text=True)


def test_the_manage_page_ends_everything_at_once(client, create_profile, mail_to_sink):
    mali = create_profile("ML")
    laos = create_profile("LA")
    path = manage_path(client, mail_to_sink)
    subscribe(laos, "reader@example.org")
    subscribe(create_profile("NE"), "someone.else@example.org")
    db.session.commit()
    post_form(client, f"{path}/end-all", {}, page_path=path)
    assert all(s.ended_at is not None for s in subscriptions("reader@example.org"))
    assert {s.profile_id for s in subscriptions("reader@example.org")} == {mali.id, laos.id}
    assert subscriptions("someone.else@example.org")[0].ended_at is None


def test_a_manage_link_reaches_only_its_own_address(client, create_profile, mail_to_sink):
    create_profile("ML")
    path = manage_path(client, mail_to_sink)
    other = subscribe(create_profile("LA"), "someone.else@example.org")
    db.session.commit()
    response = post_form(client, f"{path}/{other.id}/end", {}, page_path=path)
    assert response.status_code == 404
    db.session.refresh(other)
    assert other.ended_at is None
    assert client.get(f"{path}x").status_code == 400


def test_a_lost_manage_link_is_sent_again_only_to_a_subscribed_address(client, mali, mail_to_sink):
    subscribe(mali, "reader@example.org")
    db.session.commit()
    for email in ("reader@example.org", "stranger@example.org"):
        response = post_form(client, "/subscriptions/manage", {"email": email})
        assert response.status_code == 200
        assert "an email with a link to manage it is on its way" in response.get_data(as_text=True)
    deliver_due()
    assert mail_to_sink.to("stranger@example.org") == []
    (received,) = mail_to_sink.to("reader@example.org")
    (link,) = links(received, "/subscriptions/manage/")
    assert "Mali: Cluster Munition Ban Policy" in client.get(path_of(link)).get_data(as_text=True)
