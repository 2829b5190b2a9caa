"""The administration pages: users, countries, profiles and sections, run-time settings.

Each POST loads its object, checks its form, calls one operation from
:mod:`desk.admin.operations`, commits, flashes and redirects. Who may reach them is decided
once, for the whole blueprint, in :mod:`desk.admin`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from desk.accounts.models import Role, User
from desk.admin import bp, queries
from desk.admin.forms import (
    AUTO_ASSIGN_LABELS,
    SECTION_TYPES,
    ActionForm,
    AutoAssignForm,
    EditorForm,
    HeadingForm,
    InviteForm,
    LeadForm,
    OpenCountryForm,
    ProfileForm,
    RoleForm,
    SectionForm,
    SettingsForm,
    TopicForm,
)
from desk.admin.operations import (
    AccountState,
    AdminError,
    account_state,
    add_editor,
    add_section,
    change_role,
    change_settings,
    create_profile,
    deactivate_user,
    effective_values,
    invite_user,
    move_section,
    reactivate_user,
    remove_editor,
    rename_profile,
    rename_section,
    resend_invitation,
    reset_setting,
    send_password_reset,
    set_auto_assign,
    set_lead_editor,
    set_profile_published,
)
from desk.admin.runtime import BY_NAME, RUNTIME_SETTINGS, configured_value, refresh_runtime_settings
from desk.extensions import db
from desk.profiles.models import AutoAssign, Country, Profile, Section, SectionKind
from desk.profiles.operations import ensure_country
from desk.profiles.queries import profile_sections


def _can_change() -> bool:
    """Whether to draw forms at all (managers see the same pages without them)."""
    return current_user.role == Role.ADMIN


def _form_errors(form: object) -> str:
    errors = getattr(form, "errors", {})
    return " ".join(message for messages in errors.values() for message in messages)


def _refused(error: AdminError, target: str) -> Response:
    db.session.rollback()
    flash(str(error), "error")
    return redirect(target)


@bp.get("/admin/")
def index() -> str:
    users = queries.all_users()
    return render_template(
        "admin/index.html",
        user_counts={
            state: sum(1 for u in users if account_state(u) == state) for state in AccountState
        },
        country_count=len(queries.countries_in_use()),
        profiles=queries.all_profiles(),
        settings=queries.stored_settings(),
    )


# --------------------------------------------------------------------------- users


@bp.get("/admin/users")
def users() -> str:
    return render_template(
        "admin/users.html",
        users=queries.all_users(),
        state_of=account_state,
        invite=InviteForm(formdata=None),
        can_change=_can_change(),
    )


@bp.post("/admin/users")
def invite() -> Response | str:
    form = InviteForm()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(url_for("admin.users"))
    try:
        user = invite_user(
            form.email.data or "",
            name=form.name.data or "",
            role=Role(form.role.data),
            actor=current_user,
        )
    except AdminError as error:
        return _refused(error, url_for("admin.users"))
    db.session.commit()
    flash(f"Invited {user.name}: an email with a link to set a password is on its way.", "success")
    return redirect(url_for("admin.user", user_id=user.id))


@bp.get("/admin/users/<int:user_id>")
def user(user_id: int) -> str:
    account = db.get_or_404(User, user_id)
    return render_template(
        "admin/user.html",
        account=account,
        state=account_state(account),
        states=AccountState,
        role_form=RoleForm(formdata=None, role=account.role.value),
        can_change=_can_change(),
        is_self=account.id == current_user.id,
    )


def _user_action(user_id: int, act: Callable[[User], str]) -> Response:
    """Run one account action from a button, then go back to the account's page."""
    account = db.get_or_404(User, user_id)
    back = url_for("admin.user", user_id=account.id)
    if not ActionForm().validate():
        abort(400)
    try:
        message = act(account)
    except AdminError as error:
        return _refused(error, back)
    db.session.commit()
    flash(message, "success")
    return redirect(back)


@bp.post("/admin/users/<int:user_id>/role")
def user_role(user_id: int) -> Response:
    account = db.get_or_404(User, user_id)
    back = url_for("admin.user", user_id=account.id)
    form = RoleForm()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(back)
    try:
        changed = change_role(account, Role(form.role.data), current_user)
    except AdminError as error:
        return _refused(error, back)
    db.session.commit()
    flash(f"{account.name} is now {account.role}." if changed else "Nothing changed.", "success")
    return redirect(back)


@bp.post("/admin/users/<int:user_id>/deactivate")
def deactivate(user_id: int) -> Response:
    def act(account: User) -> str:
        deactivate_user(account, current_user)
        return f"{account.name} is deactivated and can no longer log in."

    return _user_action(user_id, act)


@bp.post("/admin/users/<int:user_id>/reactivate")
def reactivate(user_id: int) -> Response:
    def act(account: User) -> str:
        if reactivate_user(account, current_user) == AccountState.INVITED:
            return f"{account.name} never chose a password: a new invitation is on its way."
        return f"{account.name} can log in again."

    return _user_action(user_id, act)


@bp.post("/admin/users/<int:user_id>/invitation")
def resend(user_id: int) -> Response:
    def act(account: User) -> str:
        resend_invitation(account, current_user)
        return f"A new invitation is on its way to {account.email}."

    return _user_action(user_id, act)


@bp.post("/admin/users/<int:user_id>/password-reset")
def password_reset(user_id: int) -> Response:
    def act(account: User) -> str:
        if not send_password_reset(account, current_user):
            raise AdminError("Only an active account can reset its password.")
        return f"A link to choose a new password is on its way to {account.email}."

    return _user_action(user_id, act)


# --------------------------------------------------------------------------- countries


@bp.get("/admin/countries")
def countries() -> Response | str:
    opener = OpenCountryForm(request.args)
    opener.code.choices = [SelectChoice(c.code, c.name) for c in queries.iso_countries()]
    if opener.code.data and queries.iso_country(opener.code.data):
        return redirect(url_for("admin.country", code=opener.code.data.upper()))
    return render_template(
        "admin/countries.html",
        countries=queries.countries_in_use(),
        assignments=queries.assignments_by_country(),
        opener=opener,
        labels=AUTO_ASSIGN_LABELS,
    )


def _country_or_404(code: str) -> tuple[Country | None, str, str]:
    """The country row if the desk has one, and the ISO code and name; 404 for a non-country."""
    iso = queries.iso_country(code)
    if iso is None:
        abort(404)
    if code != iso.code:
        abort(404)
    country = queries.find_country(iso.code)
    return country, iso.code, country.name if country else iso.name


@bp.get("/admin/countries/<code>")
def country(code: str) -> Response | str:
    if code != code.upper():
        return redirect(url_for("admin.country", code=code.upper()))
    found, code, name = _country_or_404(code)
    assignments = queries.country_assignments(found) if found else []
    editor_form = EditorForm(formdata=None)
    candidates = queries.editor_candidates(found)
    editor_form.user.choices = [
        SelectChoice(str(u.id), f"{u.name} <{u.email}>") for u in candidates
    ]
    lead_form = LeadForm(formdata=None)
    lead_form.user.choices = [SelectChoice("", "No lead editor")] + [
        SelectChoice(str(a.user_id), a.user.name) for a in assignments
    ]
    lead_form.user.data = next((str(a.user_id) for a in assignments if a.is_lead), "")
    mode = found.auto_assign if found else AutoAssign.LEAD
    return render_template(
        "admin/country.html",
        country=found,
        code=code,
        name=name,
        assignments=assignments,
        editor_form=editor_form,
        lead_form=lead_form,
        auto_form=AutoAssignForm(formdata=None, mode=mode.value),
        mode_label=AUTO_ASSIGN_LABELS[mode],
        can_change=_can_change(),
    )


def _country_for_change(code: str) -> Country:
    _country_or_404(code)
    return ensure_country(code)


@bp.post("/admin/countries/<code>/editors")
def country_add_editor(code: str) -> Response:
    back = url_for("admin.country", code=code)
    place = _country_for_change(code)
    form = EditorForm()
    form.user.choices = [SelectChoice(str(u.id), u.name) for u in queries.editor_candidates(place)]
    if not form.validate():
        db.session.rollback()
        flash("Choose an editor who does not work on this country yet.", "error")
        return redirect(back)
    editor = db.get_or_404(User, int(form.user.data))
    try:
        add_editor(place, editor, current_user)
    except AdminError as error:
        return _refused(error, back)
    db.session.commit()
    flash(f"{editor.name} now works on {place.name}.", "success")
    return redirect(back)


@bp.post("/admin/countries/<code>/editors/<int:user_id>/remove")
def country_remove_editor(code: str, user_id: int) -> Response:
    back = url_for("admin.country", code=code)
    found, _, _ = _country_or_404(code)
    editor = db.get_or_404(User, user_id)
    if found is None or not ActionForm().validate():
        abort(404 if found is None else 400)
    try:
        remove_editor(found, editor, current_user)
    except AdminError as error:
        return _refused(error, back)
    db.session.commit()
    flash(f"{editor.name} no longer works on {found.name}.", "success")
    return redirect(back)


@bp.post("/admin/countries/<code>/lead")
def country_lead(code: str) -> Response:
    back = url_for("admin.country", code=code)
    found, _, _ = _country_or_404(code)
    if found is None:
        abort(404)
    form = LeadForm()
    form.user.choices = [SelectChoice("", "None")] + [
        SelectChoice(str(a.user_id), a.user.name) for a in queries.country_assignments(found)
    ]
    if not form.validate():
        flash("Choose one of the country's editors.", "error")
        return redirect(back)
    lead = db.session.get(User, int(form.user.data)) if form.user.data else None
    try:
        changed = set_lead_editor(found, lead, current_user)
    except AdminError as error:
        return _refused(error, back)
    db.session.commit()
    if not changed:
        flash("Nothing changed.", "info")
    elif lead:
        flash(f"{lead.name} is the lead editor of {found.name}.", "success")
    else:
        flash(f"{found.name} has no lead editor now.", "success")
    return redirect(back)


@bp.post("/admin/countries/<code>/auto-assign")
def country_auto_assign(code: str) -> Response:
    back = url_for("admin.country", code=code)
    place = _country_for_change(code)
    form = AutoAssignForm()
    if not form.validate():
        db.session.rollback()
        flash(_form_errors(form), "error")
        return redirect(back)
    changed = set_auto_assign(place, AutoAssign(form.mode.data), current_user)
    db.session.commit()
    label = AUTO_ASSIGN_LABELS[place.auto_assign]
    flash(
        f"New items of {place.name} go to: {label}." if changed else "Nothing changed.", "success"
    )
    return redirect(back)


# --------------------------------------------------------------------------- profiles


@bp.get("/admin/profiles")
def profiles() -> str:
    form = ProfileForm(formdata=None)
    form.country.choices = [SelectChoice(c.code, c.name) for c in queries.iso_countries()]
    return render_template(
        "admin/profiles.html",
        profiles=queries.all_profiles(),
        form=form,
        can_change=_can_change(),
    )


@bp.post("/admin/profiles")
def profile_create() -> Response:
    form = ProfileForm()
    form.country.choices = [SelectChoice(c.code, c.name) for c in queries.iso_countries()]
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(url_for("admin.profiles"))
    try:
        created = create_profile(
            ensure_country(form.country.data or ""),
            form.topic.data or "",
            form.language.data or "en",
            current_user,
        )
    except AdminError as error:
        return _refused(error, url_for("admin.profiles"))
    db.session.commit()
    flash(
        f"Created {created.country.name}: {created.topic}. Add its sections, then publish it.",
        "success",
    )
    return redirect(url_for("admin.profile", profile_id=created.id))


@bp.get("/admin/profiles/<int:profile_id>")
def profile(profile_id: int) -> str:
    found = db.get_or_404(Profile, profile_id)
    return render_template(
        "admin/profile.html",
        profile=found,
        sections=profile_sections(found),
        topic_form=TopicForm(formdata=None, topic=found.topic),
        section_form=SectionForm(formdata=None),
        heading_form=HeadingForm(formdata=None),
        kinds=SectionKind,
        can_change=_can_change(),
    )


@bp.post("/admin/profiles/<int:profile_id>/topic")
def profile_topic(profile_id: int) -> Response:
    found = db.get_or_404(Profile, profile_id)
    back = url_for("admin.profile", profile_id=found.id)
    form = TopicForm()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(back)
    changed = rename_profile(found, form.topic.data or "", current_user)
    db.session.commit()
    flash(f"The topic is now “{found.topic}”." if changed else "Nothing changed.", "success")
    return redirect(back)


def _publish(profile_id: int, published: bool) -> Response:
    found = db.get_or_404(Profile, profile_id)
    if not ActionForm().validate():
        abort(400)
    changed = set_profile_published(found, published, current_user)
    db.session.commit()
    if changed:
        flash("Published: readers see it now." if published else "Unpublished.", "success")
    return redirect(url_for("admin.profile", profile_id=found.id))


@bp.post("/admin/profiles/<int:profile_id>/publish")
def profile_publish(profile_id: int) -> Response:
    return _publish(profile_id, True)


@bp.post("/admin/profiles/<int:profile_id>/unpublish")
def profile_unpublish(profile_id: int) -> Response:
    return _publish(profile_id, False)


@bp.post("/admin/profiles/<int:profile_id>/sections")
def section_create(profile_id: int) -> Response:
    found = db.get_or_404(Profile, profile_id)
    back = url_for("admin.profile", profile_id=found.id)
    form = SectionForm()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(back)
    _, kind, level, _ = next(t for t in SECTION_TYPES if t[0] == form.type.data)
    section = add_section(
        found, form.heading.data or "", kind=SectionKind(kind), level=level, actor=current_user
    )
    db.session.commit()
    flash(
        f"Added “{section.heading}”. Its text is written and approved through a review task.",
        "success",
    )
    return redirect(back)


@bp.post("/admin/sections/<int:section_id>/heading")
def section_heading(section_id: int) -> Response:
    section = db.get_or_404(Section, section_id)
    back = url_for("admin.profile", profile_id=section.profile_id)
    form = HeadingForm()
    if not form.validate():
        flash(_form_errors(form), "error")
        return redirect(back)
    changed = rename_section(section, form.heading.data or "", current_user)
    db.session.commit()
    flash(f"The heading is now “{section.heading}”." if changed else "Nothing changed.", "success")
    return redirect(back)


def _move(section_id: int, step: int) -> Response:
    section = db.get_or_404(Section, section_id)
    if not ActionForm().validate():
        abort(400)
    move_section(section, step, current_user)
    db.session.commit()
    return redirect(url_for("admin.profile", profile_id=section.profile_id, _anchor=section.anchor))


@bp.post("/admin/sections/<int:section_id>/up")
def section_up(section_id: int) -> Response:
    return _move(section_id, -1)


@bp.post("/admin/sections/<int:section_id>/down")
def section_down(section_id: int) -> Response:
    return _move(section_id, 1)


# --------------------------------------------------------------------------- settings


def _settings_page(form: SettingsForm) -> str:
    stored = queries.stored_settings()
    return render_template(
        "admin/settings.html",
        form=form,
        specs=RUNTIME_SETTINGS,
        stored=stored,
        configured={s.name: int(configured_value(s.name)) for s in RUNTIME_SETTINGS},
        values=effective_values(),
        editors=queries.users_by_id({r.updated_by_id for r in stored.values() if r.updated_by_id}),
        can_change=_can_change(),
    )


@bp.get("/admin/settings")
def settings() -> str:
    values = effective_values()
    shown = {name: BY_NAME[name].to_display(value) for name, value in values.items()}
    return _settings_page(SettingsForm(formdata=None, data=shown))


@bp.post("/admin/settings")
def settings_save() -> Response | tuple[str, int]:
    form = SettingsForm()
    if not form.validate():
        flash(_form_errors(form), "error")
        return _settings_page(form), 422
    wanted = {
        spec.name: spec.from_display(float(form[spec.name].data)) for spec in RUNTIME_SETTINGS
    }
    try:
        changed = change_settings(wanted, current_user)
    except AdminError as error:
        db.session.rollback()
        flash(str(error), "error")
        return _settings_page(form), 422
    db.session.commit()
    refresh_runtime_settings(force=True)
    if changed:
        names = ", ".join(BY_NAME[name].label.lower() for name in changed)
        flash(f"Saved; in force now: {names}.", "success")
    else:
        flash("Nothing changed.", "info")
    return redirect(url_for("admin.settings"))


@bp.post("/admin/settings/<name>/reset")
def settings_reset(name: str) -> Response:
    if name not in BY_NAME:
        abort(404)
    if not ActionForm().validate():
        abort(400)
    try:
        changed = reset_setting(name, current_user)
    except AdminError as error:
        return _refused(error, url_for("admin.settings"))
    db.session.commit()
    refresh_runtime_settings(force=True)
    if changed:
        flash(f"{BY_NAME[name].label} is back to the configured value.", "success")
    return redirect(url_for("admin.settings"))
