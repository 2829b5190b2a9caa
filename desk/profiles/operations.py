"""Every change to countries and profiles. These flush and audit; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pycountry
import sqlalchemy as sa

from desk.core.audit import record_audit
from desk.core.text import slugify
from desk.core.time import utcnow
from desk.extensions import db
from desk.profiles.importing import ParsedProfile, ParsedSection, normalise_body
from desk.profiles.models import (
    Country,
    Profile,
    ProfileUpdate,
    RevisionState,
    Section,
    SectionRevision,
    UpdateType,
)
from desk.profiles.queries import find_profile_by_topic


class UnknownCountry(ValueError):
    """An ISO code or name that is not a country."""


def country_name(record: object) -> str:
    """The everyday English name pycountry knows ("Bolivia", not "Bolivia, Plurinational …")."""
    return getattr(record, "common_name", None) or record.name  # type: ignore[attr-defined]


def ensure_country(code: str) -> Country:
    """The Country with this ISO 3166-1 alpha-2 code, created from the ISO list if new."""
    code = code.strip().upper()
    country = db.session.scalar(sa.select(Country).where(Country.code == code))
    if country is not None:
        return country
    record = pycountry.countries.get(alpha_2=code)
    if record is None:
        raise UnknownCountry(f"{code!r} is not an ISO 3166-1 alpha-2 country code.")
    name = country_name(record)
    country = Country(code=code, name=name, slug=slugify(name))
    db.session.add(country)
    db.session.flush()
    return country


@dataclass
class ImportResult:
    profile: Profile
    #: True when the import made the profile.
    created: bool
    revisions_created: int
    #: The parser's warnings, then the import's own (sections missing from the file).
    warnings: list[str]
    sections_created: int = 0
    #: The new "Last Updated" date, when the import stamped one.
    stamped_on: date | None = None
    #: False when the database already said everything the file says.
    changed: bool = False


def import_profile(
    parsed: ParsedProfile, *, source: str, actor_id: int | None = None
) -> ImportResult:
    """Create or update the profile a parsed file describes; flush, never commit.

    The profile is found by country, topic slug and language, its sections by anchor. A new
    section gets an approved revision 1; a section whose heading, body, level or kind differ
    gets a new approved revision based on its current one, which it then shows. Positions follow
    the file; sections the file lacks are kept after the file's (their revisions are history),
    each with a warning. A "Last Updated" date that differs is set and stamped by a
    ProfileUpdate listing the new revisions, which are then major (minor when no stamp is
    written). When anything changed, the page's version is bumped and a "profile.imported" audit
    row written; importing the same file again changes nothing at all.

    Raises UnknownCountry for a country code that is neither in the database nor in the ISO
    list, unless the file names the country (``country_name``), which then creates it.
    """
    country = _import_country(parsed)
    topic_slug = slugify(parsed.topic)
    profile = find_profile_by_topic(country, topic_slug, parsed.language)
    created = profile is None
    if profile is None:
        profile = Profile(
            country=country, topic=parsed.topic, topic_slug=topic_slug, language=parsed.language
        )
        db.session.add(profile)
    changed = created
    if profile.topic != parsed.topic:
        profile.topic = parsed.topic
        changed = True
    if parsed.reviewed_on is not None and profile.reviewed_on != parsed.reviewed_on:
        profile.reviewed_on = parsed.reviewed_on
        changed = True

    now = utcnow()
    note = f"Imported from {source}"
    existing = {section.anchor: section for section in profile.sections}
    new_revisions: list[SectionRevision] = []
    sections_created = 0
    for position, item in enumerate(parsed.sections, start=1):
        section = existing.pop(item.anchor, None)
        if section is None:
            section = Section(anchor=item.anchor, position=position)
            profile.sections.append(section)
            sections_created += 1
        elif _section_matches(section, item):
            if section.position != position:
                section.position = position
                changed = True
            continue
        section.position = position
        section.heading, section.level, section.kind = item.heading, item.level, item.kind
        revision = SectionRevision(
            section=section,
            number=max((r.number for r in section.revisions), default=0) + 1,
            heading=item.heading,
            body=item.body,
            base_revision=section.current_revision,
            change_note=note,
            state=RevisionState.APPROVED,
            decided_by_id=actor_id,
            decided_at=now,
        )
        db.session.add(revision)
        section.current_revision = revision
        new_revisions.append(revision)

    warnings = list(parsed.warnings)
    kept = sorted(existing.values(), key=lambda section: section.position)
    for position, section in enumerate(kept, start=len(parsed.sections) + 1):
        warnings.append(
            f"section {section.heading!r} (#{section.anchor}) is not in the file; it is kept"
        )
        if section.position != position:
            section.position = position
            changed = True

    stamp: ProfileUpdate | None = None
    if parsed.last_updated_on is not None and profile.last_updated_on != parsed.last_updated_on:
        profile.last_updated_on = parsed.last_updated_on
        stamp = ProfileUpdate(
            profile=profile,
            stamped_on=parsed.last_updated_on,
            change_note=note,
            created_by_id=actor_id,
            revisions=new_revisions,
        )
        db.session.add(stamp)
    for revision in new_revisions:
        revision.update_type = UpdateType.MAJOR if stamp is not None else UpdateType.MINOR

    changed = changed or bool(new_revisions) or stamp is not None
    db.session.flush()
    if changed:
        if not created:
            profile.touch()
        record_audit(
            actor_id,
            "profile.imported",
            "profile",
            profile.id,
            {
                "source": source,
                "created": created,
                "sections": len(profile.sections),
                "sections_created": sections_created,
                "revisions_created": len(new_revisions),
                "stamped_on": stamp.stamped_on.isoformat() if stamp else None,
            },
        )
        db.session.flush()
    return ImportResult(
        profile=profile,
        created=created,
        revisions_created=len(new_revisions),
        warnings=warnings,
        sections_created=sections_created,
        stamped_on=stamp.stamped_on if stamp else None,
        changed=changed,
    )


def _section_matches(section: Section, parsed: ParsedSection) -> bool:
    """Does the section already show what the file says (bodies compared as normalised)?"""
    return (
        section.heading == parsed.heading
        and section.level == parsed.level
        and section.kind == parsed.kind
        and normalise_body(section.body) == parsed.body
    )


def _import_country(parsed: ParsedProfile) -> Country:
    try:
        return ensure_country(parsed.country_code)
    except UnknownCountry:
        if not parsed.country_name:
            raise
    country = Country(
        code=parsed.country_code, name=parsed.country_name, slug=slugify(parsed.country_name)
    )
    db.session.add(country)
    db.session.flush()
    return country
