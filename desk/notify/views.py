"""Subscription pages for readers, and the outbox and notification pages for staff.

Readers need no account: an address proves itself by the signed links emailed to it. Every
page reached by such a link only shows things; what changes anything is a button (a POST), so
that the link checkers of mail providers, which open links, never confirm or end anything.
The one exception is the one-click unsubscribe of RFC 8058: a mail client POSTs to the link in
the List-Unsubscribe header with no cookies, so that view is exempt from CSRF.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_date, gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from desk.accounts.models import NotificationMode, Role
from desk.core.locale import LANGUAGES, reader_language, use_language
from desk.core.time import desk_zone
from desk.extensions import csrf, db, limiter, login_manager
from desk.notify import bp
from desk.notify.forms import (
    ChangeSubscriptionForm,
    ConfirmForm,
    CountriesForm,
    EndForm,
    ManageLinkForm,
    NotificationModeForm,
    OutboxFilterForm,
    RetryForm,
    SubscribeForm,
)
from desk.notify.models import Frequency, OutboxMessage, OutboxState, Subscription
from desk.notify.operations import (
    ENDED_ONE_CLICK,
    ENDED_UNSUBSCRIBED,
    change_subscription,
    confirm_subscriptions,
    end_subscriptions,
    queue_manage_link,
    request_subscriptions,
    retry_messages,
    set_notification_mode,
)
from desk.notify.queries import (
    OUTBOX_PAGE_SIZE,
    OutboxFilter,
    dead_message_ids,
    outbox_kinds,
    outbox_page,
    outbox_state_counts,
    profiles_by_id,
    subscriptions_by_id,
    subscriptions_of,
)
from desk.notify.tokens import (
    LinkExpired,
    LinkInvalid,
    confirm_hours,
    make_manage_token,
    read_confirm_token,
    read_manage_token,
    read_unsubscribe_token,
)
from desk.profiles.models import Profile
from desk.profiles.queries import find_profile, published_profiles

#: Where the session keeps the address just typed, for the "check your email" page.
_SENT_TO = "desk.subscription_sent_to"

#: Subscription requests allowed per client address and per email typed, when
#: DESK_SUBSCRIBE_RATE_LIMIT is not set.
DEFAULT_SUBSCRIBE_RATE_LIMIT = "10 per hour;30 per day"


def _subscribe_limit() -> str:
    return current_app.config.get("DESK_SUBSCRIBE_RATE_LIMIT", DEFAULT_SUBSCRIBE_RATE_LIMIT)


def _submitted_email() -> str:
    email = (request.form.get("email") or "").strip().lower()[:254]
    return f"subscribe-email:{email}"


#: Each POST of a form that sends an email counts against both limits: a stranger cannot flood
#: someone's mailbox with confirmation requests, nor one client flood everyone's.
limit_by_address = limiter.limit(_subscribe_limit, methods=["POST"], scope="subscribe-address")
limit_by_email = limiter.limit(
    _subscribe_limit, methods=["POST"], key_func=_submitted_email, scope="subscribe-email"
)


def _private(page: str | Response, status: int = 200) -> Response:
    """A page carrying a reader's link or tokens: no cache keeps it, no search engine lists it."""
    response = make_response(page, status)
    response.cache_control.no_store = True
    response.cache_control.private = True
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _asked_language(default: str) -> str:
    asked = request.args.get("lang")
    return asked if asked in LANGUAGES else default


def _link_problem(error: LinkExpired | LinkInvalid, *, what: str) -> Response:
    """A clear page for a link that cannot be used: 410 when it expired, 400 when it is broken."""
    expired = isinstance(error, LinkExpired)
    profiles: list[Profile] = []
    if expired and isinstance(error.payload, dict):
        try:
            profiles = profiles_by_id([int(i) for i in error.payload.get("p", [])])
        except (TypeError, ValueError):
            profiles = []
        language = error.payload.get("l")
        if language in LANGUAGES:
            use_language(_asked_language(language))
    page = render_template(
        "notify/link_problem.html",
        expired=expired,
        what=what,
        profiles=profiles,
        hours=confirm_hours(),
    )
    return _private(page, 410 if expired else 400)


# --------------------------------------------------------------------------- subscribing


@bp.route("/profiles/<country_slug>/<topic_slug>/subscribe", methods=["GET", "POST"])
@limit_by_address
@limit_by_email
def subscribe(country_slug: str, topic_slug: str) -> Response:
    """The "email me when this profile is updated" form; sending it starts the double opt-in."""
    profile = find_profile(country_slug, topic_slug, request.args.get("lang") or None)
    if profile is None:
        abort(404)
    language = reader_language(profile.language)
    use_language(language)
    form = SubscribeForm(language=language)
    if form.validate_on_submit():
        return _requested(form, [profile])
    return _subscribe_page(profile, form, 422 if form.is_submitted() else 200)


def _subscribe_page(
    profile: Profile, form: SubscribeForm, status: int, problem: str | None = None
) -> Response:
    page = render_template("notify/subscribe.html", form=form, profile=profile, problem=problem)
    return _private(page, status)


@bp.route("/subscriptions/countries", methods=["GET", "POST"])
@limit_by_address
@limit_by_email
def countries() -> Response:
    """Subscribe to several profiles at once (one confirmation email for them all)."""
    language = reader_language()
    use_language(language)
    profiles = published_profiles()
    form = _countries_form(profiles, language)
    if request.method == "GET" and request.args.get("profile", type=int):
        form.profiles.data = [request.args.get("profile", type=int)]
    if form.validate_on_submit():
        chosen = profiles_by_id(form.profiles.data or [])
        return _requested(form, chosen)
    return _countries_page(form, profiles, 422 if form.is_submitted() else 200)


def _countries_page(
    form: CountriesForm, profiles: list[Profile], status: int, problem: str | None = None
) -> Response:
    page = render_template("notify/countries.html", form=form, profiles=profiles, problem=problem)
    return _private(page, status)


def _countries_form(profiles: list[Profile], language: str) -> CountriesForm:
    form = CountriesForm(language=language)
    form.profiles.choices = [SelectChoice(str(profile.id), profile.topic) for profile in profiles]
    return form


def _requested(form: SubscribeForm, profiles: list[Profile]) -> Response:
    """Start the double opt-in (unless a robot filled in the honeypot) and say what comes next.

    Whether the address was new, pending or subscribed already, the reader sees the same page:
    it never tells anyone what someone else's address is subscribed to.
    """
    email = (form.email.data or "").strip().lower()
    if not form.website.data:
        request_subscriptions(
            email, profiles, Frequency(form.frequency.data), form.language.data or "en"
        )
        db.session.commit()
    # The address is shown back (to catch a typo) from the reader's own session, not the URL.
    session[_SENT_TO] = email
    return redirect(url_for("notify.check_email", lang=form.language.data), code=303)


@bp.get("/subscriptions/check-your-email")
def check_email() -> Response:
    use_language(reader_language())
    page = render_template(
        "notify/check_email.html", email=session.get(_SENT_TO), hours=confirm_hours()
    )
    return _private(page)


@bp.route("/subscriptions/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> Response:
    """The page a confirmation link opens; its button confirms."""
    try:
        asked = read_confirm_token(token)
    except (LinkExpired, LinkInvalid) as error:
        return _link_problem(error, what="confirm")
    use_language(_asked_language(asked.language))
    form = ConfirmForm()
    if form.validate_on_submit():
        confirmed = confirm_subscriptions(asked)
        db.session.commit()
        if confirmed:
            flash(gettext("Thank you: your subscription is confirmed."), "success")
            token = make_manage_token(confirmed[0].id, asked.language)
            return redirect(url_for("notify.manage", token=token), code=303)
    page = render_template(
        "notify/confirm.html",
        form=form,
        asked=asked,
        profiles=profiles_by_id(asked.profile_ids),
    )
    return _private(page)


# --------------------------------------------------------------------------- managing


def _manage_token(token: str) -> tuple[str, str] | Response:
    """The address a manage link is for, and its language; or the page saying it cannot be used."""
    try:
        subscription_id, language = read_manage_token(token)
    except (LinkExpired, LinkInvalid) as error:
        return _link_problem(error, what="manage")
    subscription = db.session.get(Subscription, subscription_id)
    if subscription is None:
        return _link_problem(LinkInvalid("no such subscription"), what="manage")
    return subscription.email, language


@bp.get("/subscriptions/manage/<token>")
def manage(token: str) -> Response:
    """An address's subscriptions, each with its frequency, language and an unsubscribe button."""
    owner = _manage_token(token)
    if isinstance(owner, Response):
        return owner
    email, language = owner
    use_language(_asked_language(language))
    subscriptions = subscriptions_of(email)
    forms = {
        subscription.id: ChangeSubscriptionForm(
            formdata=None,
            prefix=f"s{subscription.id}",
            frequency=subscription.frequency.value,
            language=subscription.language,
        )
        for subscription in subscriptions
    }
    page = render_template(
        "notify/manage.html",
        token=token,
        email=email,
        subscriptions=subscriptions,
        forms=forms,
        end_form=EndForm(),
    )
    return _private(page)


def _owned_subscription(email: str, subscription_id: int) -> Subscription:
    subscription = db.get_or_404(Subscription, subscription_id)
    if subscription.email != email:
        abort(404)
    return subscription


@bp.post("/subscriptions/manage/<token>/<int:subscription_id>")
def change(token: str, subscription_id: int) -> Response:
    owner = _manage_token(token)
    if isinstance(owner, Response):
        return owner
    email, language = owner
    use_language(_asked_language(language))
    subscription = _owned_subscription(email, subscription_id)
    form = ChangeSubscriptionForm(prefix=f"s{subscription.id}")
    if subscription.ended_at is None and form.validate_on_submit():
        change_subscription(subscription, Frequency(form.frequency.data), form.language.data)
        db.session.commit()
        flash(gettext("Your choice is saved."), "success")
    return redirect(url_for("notify.manage", token=token, lang=request.args.get("lang")), code=303)


@bp.post("/subscriptions/manage/<token>/<int:subscription_id>/end")
def end(token: str, subscription_id: int) -> Response:
    owner = _manage_token(token)
    if isinstance(owner, Response):
        return owner
    email, language = owner
    use_language(_asked_language(language))
    subscription = _owned_subscription(email, subscription_id)
    if EndForm().validate_on_submit() and end_subscriptions([subscription], ENDED_UNSUBSCRIBED):
        db.session.commit()
        flash(
            gettext(
                "You are unsubscribed from %(profile)s.",
                profile=f"{subscription.profile.country.name}: {subscription.profile.topic}",
            ),
            "success",
        )
    return redirect(url_for("notify.manage", token=token, lang=request.args.get("lang")), code=303)


@bp.post("/subscriptions/manage/<token>/end-all")
def end_all(token: str) -> Response:
    owner = _manage_token(token)
    if isinstance(owner, Response):
        return owner
    email, language = owner
    use_language(_asked_language(language))
    if EndForm().validate_on_submit() and end_subscriptions(
        subscriptions_of(email), ENDED_UNSUBSCRIBED
    ):
        db.session.commit()
        flash(gettext("You are unsubscribed from all profiles."), "success")
    return redirect(url_for("notify.manage", token=token, lang=request.args.get("lang")), code=303)


@bp.route("/subscriptions/manage", methods=["GET", "POST"])
@limit_by_address
@limit_by_email
def manage_link() -> Response:
    """Lost the emails? Type the address and the link to manage it is emailed there."""
    language = reader_language()
    use_language(language)
    form = ManageLinkForm()
    if form.validate_on_submit():
        if not form.website.data:
            queue_manage_link(form.email.data or "", language)
            db.session.commit()
        return _manage_link_page(form, 200, sent=True)
    return _manage_link_page(form, 422 if form.is_submitted() else 200)


def _manage_link_page(
    form: ManageLinkForm, status: int, *, sent: bool = False, problem: str | None = None
) -> Response:
    page = render_template("notify/manage_link.html", form=form, sent=sent, problem=problem)
    return _private(page, status)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str) -> Response:
    """The List-Unsubscribe link: a GET asks, a POST ends (RFC 8058: no cookies, no CSRF token).

    A mail client's one-click POST carries ``List-Unsubscribe=One-Click``; the page's own button
    posts without it. Either ends every subscription the link covers; a repeat changes nothing.
    """
    try:
        subscriptions = subscriptions_by_id(read_unsubscribe_token(token))
    except (LinkExpired, LinkInvalid) as error:
        return _link_problem(error, what="unsubscribe")
    if not subscriptions:
        return _link_problem(LinkInvalid("no such subscription"), what="unsubscribe")
    language = subscriptions[0].language
    use_language(_asked_language(language))
    done = False
    if request.method == "POST":
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        end_subscriptions(subscriptions, ENDED_ONE_CLICK if one_click else ENDED_UNSUBSCRIBED)
        db.session.commit()
        done = True
    page = render_template(
        "notify/unsubscribe.html",
        token=token,
        subscriptions=subscriptions,
        done=done,
        manage_token=make_manage_token(subscriptions[0].id, language),
    )
    return _private(page)


@bp.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> Response:
    """A form whose token expired (a page left open for hours): shown again, with what was typed.

    Nothing was changed; the reader only has to press the button again.
    """
    endpoint = request.endpoint or ""
    args = request.view_args or {}
    problem = gettext("This page had expired, so nothing was changed. Please send it again.")
    if endpoint == "notify.subscribe":
        profile = find_profile(args["country_slug"], args["topic_slug"], request.args.get("lang"))
        if profile is None:
            abort(404)
        use_language(reader_language(profile.language))
        return _subscribe_page(profile, SubscribeForm(), 400, problem)
    if endpoint == "notify.countries":
        use_language(reader_language())
        profiles = published_profiles()
        return _countries_page(_countries_form(profiles, "en"), profiles, 400, problem)
    if endpoint == "notify.manage_link":
        use_language(reader_language())
        return _manage_link_page(ManageLinkForm(), 400, problem=problem)
    if endpoint in {"notify.change", "notify.end", "notify.end_all"}:
        target = url_for("notify.manage", token=args["token"], lang=request.args.get("lang"))
    elif endpoint in {"notify.retry", "notify.retry_all_dead"}:
        target = url_for("notify.outbox")
    else:
        target = request.url
    flash(problem, "error")
    return redirect(target, code=303)


# --------------------------------------------------------------------------- staff


def staff_page(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A staff page: logged in, and (when roles are given) one of those roles, else 403."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _outbox_filter(form: OutboxFilterForm) -> OutboxFilter:
    return OutboxFilter(
        state=OutboxState(form.state.data) if form.state.data else None,
        kind=form.kind.data or "",
        recipient=form.recipient.data or "",
        day=form.day.data,
    )


@bp.get("/desk/outbox")
@staff_page(Role.ADMIN, Role.MANAGER)
def outbox() -> str:
    """Every email Desk has written: filters, counts per state, dead ones with Retry (admins)."""
    form = OutboxFilterForm(request.args, kinds=outbox_kinds())
    chosen = _outbox_filter(form) if form.validate() else OutboxFilter()
    before = request.args.get("before", type=int)
    messages = outbox_page(chosen, before)
    older = messages[OUTBOX_PAGE_SIZE - 1].id if len(messages) > OUTBOX_PAGE_SIZE else None
    return render_template(
        "notify/outbox.html",
        form=form,
        messages=messages[:OUTBOX_PAGE_SIZE],
        older=older,
        before=before,
        counts=outbox_state_counts(),
        filtered_counts=outbox_state_counts(chosen),
        zone=desk_zone(),
        can_retry=current_user.role == Role.ADMIN,
        dead_state=OutboxState.DEAD,
        filter_args={k: v for k, v in request.args.items() if k != "before" and v},
    )


#: Emails whose text is a key: a link that sets a password, or confirms or manages another
#: person's subscriptions. Staff see that they were sent, never the link itself (a manager who
#: could read an invitation could take over the account).
KEY_BEARING_KINDS = ("account.", "subscription.confirm", "subscription.manage")


@bp.get("/desk/outbox/<int:message_id>")
@staff_page(Role.ADMIN, Role.MANAGER)
def outbox_message(message_id: int) -> str:
    message = db.get_or_404(OutboxMessage, message_id)
    return render_template(
        "notify/outbox_message.html",
        message=message,
        zone=desk_zone(),
        can_retry=current_user.role == Role.ADMIN,
        holds_key=message.kind.startswith(KEY_BEARING_KINDS),
    )


@bp.post("/desk/outbox/<int:message_id>/retry")
@staff_page(Role.ADMIN)
def retry(message_id: int) -> Response:
    message = db.get_or_404(OutboxMessage, message_id)
    if RetryForm().validate_on_submit():
        if retry_messages([message], actor_id=current_user.id):
            db.session.commit()
            flash(f"The email to {message.recipient} will be sent again shortly.", "success")
        else:
            flash("Only a dead email can be retried; this one is not.", "error")
    back = request.form.get("next", "")
    if not back.startswith(url_for("notify.outbox")):
        back = url_for("notify.outbox_message", message_id=message.id)
    return redirect(back, code=303)


@bp.post("/desk/outbox/retry-dead")
@staff_page(Role.ADMIN)
def retry_all_dead() -> Response:
    """Retry every dead email the current filter shows (after an outage, say)."""
    form = OutboxFilterForm(request.args, kinds=outbox_kinds())
    chosen = _outbox_filter(form) if form.validate() else OutboxFilter()
    if RetryForm().validate_on_submit():
        ids = dead_message_ids(chosen)
        messages = [db.session.get(OutboxMessage, i) for i in ids]
        retried = retry_messages([m for m in messages if m is not None], actor_id=current_user.id)
        db.session.commit()
        flash(f"{retried} dead email{'s' if retried != 1 else ''} will be sent again.", "success")
    return redirect(url_for("notify.outbox", **request.args), code=303)


@bp.route("/desk/me/notifications", methods=["GET", "POST"])
@staff_page()
def my_notifications() -> Response | str:
    """How this staff member hears of their work: email by email, or one daily digest."""
    form = NotificationModeForm(mode=current_user.notification_mode.value)
    if form.validate_on_submit():
        mode = NotificationMode(form.mode.data)
        if set_notification_mode(current_user, mode, actor_id=current_user.id):
            db.session.commit()
        flash("Your choice is saved.", "success")
        return redirect(url_for("notify.my_notifications"), code=303)
    return render_template("notify/my_notifications.html", form=form)


@bp.app_template_filter("long_date")
def long_date(value: date | None) -> str:
    """'16 August 2011', '16 août 2011': the Monitor's date style, in the page's language."""
    if value is None:
        return ""
    return format_date(value, format="d MMMM y")
