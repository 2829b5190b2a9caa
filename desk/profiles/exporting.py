"""Write a profile as a Markdown profile file, the format ``importing.parse_markdown`` reads.

Export and import are inverses: importing an export into the same database changes nothing,
and into an empty one gives the same sections, bodies, levels, kinds, anchors and dates.
"""

from __future__ import annotations

import re

import pycountry
import sqlalchemy as sa

from desk.core.text import slugify
from desk.extensions import db
from desk.profiles.importing import normalise_body
from desk.profiles.models import Country, Profile, SectionKind
from desk.profiles.queries import find_profile_by_topic

#: A body line the importer would take for the start of a new section.
_SECTION_HEADING = re.compile(r"^#{2,3}(?:[ \t]|$)")
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")


def find_profile_to_export(country: str, topic: str, language: str = "en") -> Profile | None:
    """The profile of a country (ISO code or slug) and topic (slug or text), or None."""
    key = country.strip()
    found = db.session.scalar(
        sa.select(Country).where(
            sa.or_(Country.code == key.upper(), Country.slug == slugify(key, max_length=120))
        )
    )
    if found is None:
        return None
    return find_profile_by_topic(found, slugify(topic), language)


def export_profile(profile: Profile) -> str:
    """The profile as Markdown: front matter, then each section's heading line and body."""
    meta = [("country", profile.country.code)]
    if pycountry.countries.get(alpha_2=profile.country.code) is None:
        # A user-assigned code: the name lets an import into another database create it.
        meta.append(("country_name", profile.country.name))
    meta += [("topic", profile.topic), ("language", profile.language)]
    if profile.last_updated_on is not None:
        meta.append(("last_updated", profile.last_updated_on.isoformat()))
    if profile.reviewed_on is not None:
        meta.append(("reviewed", profile.reviewed_on.isoformat()))
    blocks = ["\n".join(["---", *(f"{key}: {value}" for key, value in meta), "---"])]
    for section in sorted(profile.sections, key=lambda s: s.position):
        attributes = f"#{section.anchor}"
        if section.kind == SectionKind.FIELD:
            attributes += " .field"
        blocks.append(f"{'#' * section.level} {section.heading} {{{attributes}}}")
        body = normalise_body(section.body)
        if body:
            blocks.append(body)
    return "\n\n".join(blocks) + "\n"


def export_problems(profile: Profile) -> list[str]:
    """What would not survive an export and re-import, one message per problem.

    A section heading must be level 2 or 3 to be read back as a section, and a body line that
    starts with ``## `` or ``### `` (outside a code block) would be read back as a new section.
    """
    problems = []
    for section in sorted(profile.sections, key=lambda s: s.position):
        if section.level not in (2, 3):
            problems.append(
                f"section {section.heading!r} has heading level {section.level}; "
                "only levels 2 and 3 are read back"
            )
        in_fence: str | None = None
        for line in normalise_body(section.body).split("\n"):
            fence = _FENCE.match(line)
            if fence:
                marker = fence.group(1)[0]
                in_fence = (
                    marker if in_fence is None else (None if marker == in_fence else in_fence)
                )
            elif in_fence is None and _SECTION_HEADING.match(line):
                problems.append(
                    f"section {section.heading!r} has a body line read back as a heading: {line!r}"
                )
    return problems
