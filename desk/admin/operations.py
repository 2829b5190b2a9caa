"""Every change the administration makes: accounts, countries, profiles, sections, settings.

Each function checks what may not be done (raising :class:`AdminError` with a message fit to
show), changes the rows, writes an audit row with ``before`` and ``after``, and flushes. None
commits: the view does, so a change and its audit row and emails land together or not at all.
"""

from __future__ import annotations

import enum
import secrets
from typing import Any

import sqlalchemy as sa

from desk.accounts.models import CountryAssignment, Role, Setting, User
from desk.accounts.operations import AccountError, create_user, find_user_by_email
from desk.admin.runtime import BY_NAME, configured_value, stored_values
from desk.admin.tokens import LinkPurpose, make_account_token, max_age_seconds
from desk.core.audit import record_audit
from desk.core.text import slugify
from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.outbox import queue_email, site_url_for
from desk.profiles.models import (
    AutoAssign,
    Country,
    Profile,
    RevisionState,
    Section,
    SectionKind,
    SectionRevision,
    UpdateType,
)
from desk.profiles.page_cache import bump_generation
from desk.reviews.queries import next_revision_number

#: The password hash of an account whose invitation was withdrawn before it was accepted. No
#: argon2 hash starts with "!", so no password matches it, and it voids the invitation links
#: (they are bound to the empty hash of an invited account).
NO_PASSWORD = "!"
MAX_ANCHOR_LENGTH = 200


class AdminError(ValueError):
    """A change that cannot be made, with a message fit to show."""


class AccountState(enum.StrEnum):
    #: Invited, no password set yet; the invitation link works.
    INVITED = "invited"
    ACTIVE = "active"
    #: May not log in; any session it had ends at its next request.
    DEACTIVATED = "deactivated"


def account_state(user: User) -> AccountState:
    if user.is_active:
        return AccountState.ACTIVE
    return AccountState.INVITED if not user.password_hash else AccountState.DEACTIVATED


def _audit(actor: User | None, action: str, kind: str, object_id: Any, **data: Any) -> None:
    record_audit(actor.id if actor else None, action, kind, object_id, data)
    db.session.flush()


# --------------------------------------------------------------------------- accounts


def _queue_account_email(purpose: LinkPurpose, user: User, actor: User | None) -> None:
    """The invitation or reset email with its link; each send is a message of its own."""
    token = make_account_token(purpose, user)
    if purpose == LinkPurpose.INVITATION:
        kind, template, endpoint = "account.invitation", "invitation", "admin.accept_invitation"
    else:
        kind, template, endpoint = (
            "account.password_reset",
            "password_reset",
            "admin.reset_password",
        )
    queue_email(
        kind,
        user.email,
        template=template,
        dedupe_key=f"{kind}:{user.id}:{secrets.token_hex(8)}",
        user=user,
        actor=actor,
        link=site_url_for(endpoint, token=token),
        hours=max_age_seconds(purpose) // 3600,
    )


def invite_user(email: str, *, name: str, role: Role, actor: User) -> User:
    """Make an account that cannot log in yet, and email its owner a link to set a password."""
    try:
        user = create_user(email, name=name, role=role, actor_id=actor.id)
    except AccountError as error:
        raise AdminError(str(error)) from error
    user.is_active = False
    _audit(
        actor,
        "user.invited",
        "user",
        user.id,
        before=None,
        after={"email": user.email, "name": user.name, "role": str(role), "state": "invited"},
    )
    _queue_account_email(LinkPurpose.INVITATION, user, actor)
    return user


def resend_invitation(user: User, actor: User) -> None:
    """Email a new invitation link; the links sent before stop working."""
    if account_state(user) != AccountState.INVITED:
        raise AdminError(f"{user.email} is not waiting for an invitation.")
    # An invited account has no session to end: this only voids the earlier links (a copy
    # that went to a wrong or shared mailbox is why an invitation is sent again).
    user.end_sessions()
    _audit(actor, "user.invitation_resent", "user", user.id, email=user.email)
    _queue_account_email(LinkPurpose.INVITATION, user, actor)


def _refuse_self(user: User, actor: User, what: str) -> None:
    # An admin acting on themselves is the only way the desk could lose its last admin.
    if user.id == actor.id:
        raise AdminError(f"You cannot {what} your own account; ask another admin.")


def deactivate_user(user: User, actor: User) -> None:
    """Stop an account: it cannot log in, its session ends, its links stop working.

    An invitation not yet accepted is withdrawn. Assignments and history stay.
    """
    _refuse_self(user, actor, "deactivate")
    before = account_state(user)
    if before == AccountState.DEACTIVATED:
        raise AdminError(f"{user.email} is already deactivated.")
    user.is_active = False
    user.end_sessions()
    if before == AccountState.INVITED:
        user.password_hash = NO_PASSWORD
    _audit(
        actor,
        "user.deactivated",
        "user",
        user.id,
        before={"state": str(before)},
        after={"state": str(AccountState.DEACTIVATED)},
    )


def reactivate_user(user: User, actor: User) -> AccountState:
    """Let a deactivated account log in again; one that never set a password is invited anew."""
    if account_state(user) != AccountState.DEACTIVATED:
        raise AdminError(f"{user.email} is not deactivated.")
    if user.password_hash == NO_PASSWORD:
        user.password_hash = ""
        after = AccountState.INVITED
    else:
        user.is_active = True
        after = AccountState.ACTIVE
    _audit(
        actor,
        "user.reactivated",
        "user",
        user.id,
        before={"state": str(AccountState.DEACTIVATED)},
        after={"state": str(after)},
    )
    if after == AccountState.INVITED:
        _queue_account_email(LinkPurpose.INVITATION, user, actor)
    return after


def change_role(user: User, role: Role, actor: User) -> bool:
    """Give the account another role; False when it already has it."""
    if user.role == role:
        return False
    _refuse_self(user, actor, "change the role of")
    before = user.role
    user.role = role
    _audit(
        actor, "user.role_changed", "user", user.id, before={"role": before}, after={"role": role}
    )
    return True


def send_password_reset(user: User, actor: User | None) -> bool:
    """Email an active account a link to choose a new password; False (nothing sent) otherwise.

    ``actor`` is the admin who asked, or None when the owner asked on the login page.
    """
    if account_state(user) != AccountState.ACTIVE:
        return False
    _audit(
        actor,
        "user.password_reset_sent",
        "user",
        user.id,
        email=user.email,
        asked_by="admin" if actor else "owner",
    )
    _queue_account_email(LinkPurpose.PASSWORD_RESET, user, actor)
    return True


def request_password_reset(email: str) -> None:
    """The login page's "Forgot your password?": a link if the address has an active account.

    The caller says the same thing whatever happens here, so nobody learns which addresses exist.
    """
    user = find_user_by_email(email)
    if user is not None:
        send_password_reset(user, None)


def set_password_from_link(purpose: LinkPurpose, user: User, password: str) -> None:
    """The owner chose a password from an emailed link; an invitation also activates the account.

    The new hash voids the link just used (and every other one sent before).
    """
    before = account_state(user)
    user.set_password(password)
    if purpose == LinkPurpose.INVITATION:
        user.is_active = True
        action = "user.invitation_accepted"
    else:
        action = "user.password_reset"
    _audit(
        user,
        action,
        "user",
        user.id,
        before={"state": str(before)},
        after={"state": str(account_state(user)), "password": "changed"},
    )


# --------------------------------------------------------------------------- countries


def _editor_summary(country: Country) -> dict[str, Any]:
    assignments = db.session.scalars(
        sa.select(CountryAssignment).where(CountryAssignment.country_id == country.id)
    ).all()
    return {
        "editors": sorted(a.user.email for a in assignments),
        "lead": sorted(a.user.email for a in assignments if a.is_lead),
    }


def _assignment(country: Country, user: User) -> CountryAssignment | None:
    return db.session.scalar(
        sa.select(CountryAssignment).where(
            CountryAssignment.country_id == country.id, CountryAssignment.user_id == user.id
        )
    )


def add_editor(country: Country, user: User, actor: User) -> None:
    """Make the user one of the country's editors (they then see and get its items)."""
    if _assignment(country, user) is not None:
        raise AdminError(f"{user.name} already works on {country.name}.")
    before = _editor_summary(country)
    db.session.add(CountryAssignment(user=user, country=country, is_lead=False))
    db.session.flush()
    _audit(
        actor,
        "country.editor_added",
        "country",
        country.code,
        user=user.id,
        before=before,
        after=_editor_summary(country),
    )


def remove_editor(country: Country, user: User, actor: User) -> None:
    """Take the user off the country; items already assigned to them stay theirs."""
    assignment = _assignment(country, user)
    if assignment is None:
        raise AdminError(f"{user.name} does not work on {country.name}.")
    before = _editor_summary(country)
    db.session.delete(assignment)
    db.session.flush()
    _audit(
        actor,
        "country.editor_removed",
        "country",
        country.code,
        user=user.id,
        before=before,
        after=_editor_summary(country),
    )


def set_lead_editor(country: Country, user: User | None, actor: User) -> bool:
    """Make one of the country's editors its only lead editor, or leave it with none."""
    assignments = db.session.scalars(
        sa.select(CountryAssignment).where(CountryAssignment.country_id == country.id)
    ).all()
    if user is not None and user.id not in {a.user_id for a in assignments}:
        raise AdminError(f"{user.name} does not work on {country.name}; add them first.")
    before = _editor_summary(country)
    for assignment in assignments:
        assignment.is_lead = user is not None and assignment.user_id == user.id
    db.session.flush()
    after = _editor_summary(country)
    if after == before:
        return False
    _audit(actor, "country.lead_changed", "country", country.code, before=before, after=after)
    return True


def set_auto_assign(country: Country, mode: AutoAssign, actor: User) -> bool:
    """Choose who gets the country's new items; False when it was already so."""
    if country.auto_assign == mode:
        return False
    before = country.auto_assign
    country.auto_assign = mode
    # Intake routes with the profile cache's copy of the country: this process re-reads it.
    bump_generation()
    _audit(
        actor,
        "country.auto_assign_changed",
        "country",
        country.code,
        before={"auto_assign": before},
        after={"auto_assign": mode},
    )
    return True


# --------------------------------------------------------------------------- profiles


def _profile_facts(profile: Profile) -> dict[str, Any]:
    return {
        "country": profile.country.code,
        "topic": profile.topic,
        "language": profile.language,
        "published": profile.is_published,
    }


def create_profile(country: Country, topic: str, language: str, actor: User) -> Profile:
    """A new profile, unpublished until its sections have text and an admin publishes it."""
    topic = " ".join(topic.split())
    topic_slug = slugify(topic, max_length=200)
    exists = db.session.scalar(
        sa.select(Profile.id).where(
            Profile.country_id == country.id,
            Profile.topic_slug == topic_slug,
            Profile.language == language,
        )
    )
    if exists is not None:
        raise AdminError(f"{country.name} already has a profile “{topic}” in {language}.")
    profile = Profile(
        country=country, topic=topic, topic_slug=topic_slug, language=language, is_published=False
    )
    db.session.add(profile)
    db.session.flush()
    _audit(
        actor, "profile.created", "profile", profile.id, before=None, after=_profile_facts(profile)
    )
    return profile


def rename_profile(profile: Profile, topic: str, actor: User) -> bool:
    """Change the topic as titles show it; the address (topic slug) stays, so links keep working."""
    topic = " ".join(topic.split())
    if topic == profile.topic:
        return False
    before = profile.topic
    profile.topic = topic
    profile.touch()
    _audit(
        actor,
        "profile.renamed",
        "profile",
        profile.id,
        before={"topic": before},
        after={"topic": topic},
    )
    return True


def set_profile_published(profile: Profile, published: bool, actor: User) -> bool:
    """Show the profile to readers, or take it off the site (its address then answers 404)."""
    if profile.is_published == published:
        return False
    profile.is_published = published
    profile.touch()
    _audit(
        actor,
        "profile.published" if published else "profile.unpublished",
        "profile",
        profile.id,
        before={"published": not published},
        after={"published": published},
    )
    return True


# --------------------------------------------------------------------------- sections


def _unique_anchor(profile: Profile, heading: str) -> str:
    taken = set(
        db.session.scalars(sa.select(Section.anchor).where(Section.profile_id == profile.id))
    )
    base = slugify(heading, max_length=MAX_ANCHOR_LENGTH - 4)
    anchor, suffix = base, 2
    while anchor in taken:
        anchor, suffix = f"{base}-{suffix}", suffix + 1
    return anchor


def add_section(
    profile: Profile, heading: str, *, kind: SectionKind, level: int, actor: User
) -> Section:
    """A new last section with a heading and no text yet.

    Its text is written and approved in the review flow like any other; until then a published
    profile shows the heading alone.
    """
    heading = " ".join(heading.split())
    last = db.session.scalar(
        sa.select(sa.func.max(Section.position)).where(Section.profile_id == profile.id)
    )
    section = Section(
        profile=profile,
        position=(last or 0) + 1,
        anchor=_unique_anchor(profile, heading),
        heading=heading,
        level=level,
        kind=kind,
    )
    db.session.add(section)
    profile.touch()
    db.session.flush()
    _audit(
        actor,
        "section.created",
        "section",
        section.id,
        profile=profile.id,
        before=None,
        after={
            "heading": heading,
            "anchor": section.anchor,
            "position": section.position,
            "kind": kind,
            "level": level,
        },
    )
    return section


def rename_section(section: Section, heading: str, actor: User) -> bool:
    """Reword a section's heading; its text and anchor stay as they are.

    The heading is part of a section's revisions, so the new one is published as a minor
    revision carrying the current text unchanged (no Last Updated stamp, no email). Drafts
    begun before it must be rebased before approval, which keeps both changes; the body text
    itself only ever changes through review and approval.
    """
    heading = " ".join(heading.split())
    # Locked like an approval locks it, so the two cannot both make a "current" revision.
    section = db.session.scalars(
        sa.select(Section)
        .where(Section.id == section.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if heading == section.heading:
        return False
    before = section.heading
    current = section.current_revision
    revision_id = None
    if current is not None:
        now = utcnow()
        revision = SectionRevision(
            section_id=section.id,
            number=next_revision_number(section),
            heading=heading,
            body=current.body,
            author_id=actor.id,
            base_revision_id=current.id,
            change_note=f"Heading renamed from “{before}” in the administration.",
            update_type=UpdateType.MINOR,
            state=RevisionState.APPROVED,
            decided_by_id=actor.id,
            decided_at=now,
        )
        db.session.add(revision)
        db.session.flush()
        section.current_revision = revision
        revision_id = revision.id
    section.heading = heading
    section.profile.touch()
    _audit(
        actor,
        "section.renamed",
        "section",
        section.id,
        profile=section.profile_id,
        revision=revision_id,
        before={"heading": before},
        after={"heading": heading},
    )
    return True


def move_section(section: Section, step: int, actor: User) -> bool:
    """Swap the section with the one before (step -1) or after (+1); False at either end."""
    profile = section.profile
    order = sorted(profile.sections, key=lambda s: (s.position, s.id))
    index = order.index(section)
    other_index = index + step
    if step not in (-1, 1) or not 0 <= other_index < len(order):
        return False
    order[index], order[other_index] = order[other_index], order[index]
    before = [s.anchor for s in sorted(profile.sections, key=lambda s: (s.position, s.id))]
    for position, item in enumerate(order, start=1):
        item.position = position
    profile.touch()
    _audit(
        actor,
        "section.moved",
        "section",
        section.id,
        profile=profile.id,
        before={"order": before},
        after={"order": [s.anchor for s in order]},
    )
    return True


# --------------------------------------------------------------------------- settings


def effective_values() -> dict[str, int]:
    """Every run-time setting's value now: the stored one, else the configured one."""
    stored = stored_values()
    return {name: stored.get(name, int(configured_value(name))) for name in BY_NAME}


def check_settings(values: dict[str, int]) -> list[str]:
    """What is wrong with a full set of values (empty when they may be saved)."""
    problems = []
    for name, value in values.items():
        spec = BY_NAME[name]
        if not spec.minimum <= value <= spec.maximum:
            low, high = spec.describe(spec.minimum), spec.describe(spec.maximum)
            problems.append(f"{spec.label} must be between {low} and {high}.")
    if values["DESK_UPLOAD_MAX_FILE_BYTES"] > values["DESK_UPLOAD_MAX_SUBMISSION_BYTES"]:
        problems.append("The largest file cannot be larger than the largest submission.")
    return problems


def change_settings(new_values: dict[str, int], actor: User) -> list[str]:
    """Store the values that differ from today's; returns their names.

    Raises AdminError if the resulting set is not valid. The caller applies them to the running
    process after the commit (:func:`desk.admin.runtime.refresh_runtime_settings`).
    """
    current = effective_values()
    wanted = {**current, **new_values}
    problems = check_settings(wanted)
    if problems:
        raise AdminError(" ".join(problems))
    changed = [name for name in BY_NAME if wanted[name] != current[name]]
    for name in changed:
        row = db.session.get(Setting, name)
        if row is None:
            row = Setting(name=name)
            db.session.add(row)
        row.value = {"value": wanted[name]}
        row.updated_by_id = actor.id
        row.updated_at = utcnow()
        _audit(
            actor,
            "setting.changed",
            "setting",
            name,
            before={"value": current[name]},
            after={"value": wanted[name]},
        )
    return changed


def reset_setting(name: str, actor: User) -> bool:
    """Go back to the configured value (defaults, instance/config.py, environment)."""
    row = db.session.get(Setting, name)
    if row is None:
        return False
    configured = int(configured_value(name))
    values = {**effective_values(), name: configured}
    problems = check_settings(values)
    if problems:
        raise AdminError(" ".join(problems))
    before = int(row.value.get("value", configured))
    db.session.delete(row)
    _audit(
        actor,
        "setting.reset",
        "setting",
        name,
        before={"value": before},
        after={"value": configured},
    )
    return True
