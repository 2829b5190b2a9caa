"""Countries, their profiles, the profiles' sections and every revision of a section."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from desk.core.db import str_enum
from desk.core.time import utcnow
from desk.extensions import db
from desk.profiles.page_cache import bump_generation

if TYPE_CHECKING:
    from desk.accounts.models import User


class AutoAssign(enum.StrEnum):
    """Who gets a new item of a country once it is routed there."""

    #: Nobody: it waits in the country's "Unassigned" view.
    NONE = "none"
    #: The country's lead editor.
    LEAD = "lead"
    #: The country's editor with the fewest open items.
    LEAST_LOADED = "least_loaded"


class Country(db.Model):
    __tablename__ = "country"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ISO 3166-1 alpha-2 code, upper case ("ML"); also the prefix of feedback references.
    code: Mapped[str] = mapped_column(sa.String(2), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    #: URL segment of the public pages ("mali").
    slug: Mapped[str] = mapped_column(sa.String(120), unique=True)
    auto_assign: Mapped[AutoAssign] = mapped_column(
        str_enum(AutoAssign), default=AutoAssign.LEAD, server_default=AutoAssign.LEAD.value
    )

    profiles: Mapped[list[Profile]] = relationship(back_populates="country")

    def __repr__(self) -> str:
        return f"<Country {self.code}>"


class Profile(db.Model):
    """One published page per country × topic × language."""

    __tablename__ = "profile"
    __table_args__ = (sa.UniqueConstraint("country_id", "topic_slug", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    country_id: Mapped[int] = mapped_column(sa.ForeignKey("country.id"), index=True)
    #: The topic as the title shows it ("Cluster Munition Ban Policy").
    topic: Mapped[str] = mapped_column(sa.String(200))
    #: URL segment of the topic ("cluster-munition-ban-policy").
    topic_slug: Mapped[str] = mapped_column(sa.String(200))
    #: BCP 47 language tag of the text ("en", "fr").
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    #: The public "Last Updated" date; moves only with a major revision or a manual stamp.
    last_updated_on: Mapped[date | None]
    #: Last date an editor confirmed the text is still current without changing it.
    reviewed_on: Mapped[date | None]
    is_published: Mapped[bool] = mapped_column(default=True)
    #: Bumped by every change to the published page (text, headings, stamp): the ETag's basis.
    content_version: Mapped[int] = mapped_column(default=1)
    #: When the published page last changed in any way: the Last-Modified header.
    content_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    country: Mapped[Country] = relationship(back_populates="profiles")
    sections: Mapped[list[Section]] = relationship(
        back_populates="profile", order_by="Section.position", cascade="all, delete-orphan"
    )
    updates: Mapped[list[ProfileUpdate]] = relationship(
        back_populates="profile", order_by="ProfileUpdate.id.desc()"
    )

    @property
    def slug(self) -> str:
        """The path below /profiles/: country slug and topic slug."""
        return f"{self.country.slug}/{self.topic_slug}"

    def touch(self) -> None:
        """Mark the public page as changed (new ETag and Last-Modified)."""
        self.content_version = (self.content_version or 0) + 1
        self.content_changed_at = utcnow()
        bump_generation()

    def __repr__(self) -> str:
        return f"<Profile {self.country_id}/{self.topic_slug}/{self.language}>"


class SectionKind(enum.StrEnum):
    #: A heading with running text.
    TEXT = "text"
    #: A labelled field of the summary box shown under the preceding text section's heading.
    FIELD = "field"


class Section(db.Model):
    __tablename__ = "section"
    __table_args__ = (sa.UniqueConstraint("profile_id", "anchor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(sa.ForeignKey("profile.id"), index=True)
    #: Reading order within the profile, from 1.
    position: Mapped[int]
    #: Stable fragment id on the public page; kept when the heading is reworded.
    anchor: Mapped[str] = mapped_column(sa.String(200))
    heading: Mapped[str] = mapped_column(sa.String(300))
    #: HTML heading level: 2 for a section, 3 for a subsection or a summary-box field.
    level: Mapped[int] = mapped_column(default=2)
    kind: Mapped[SectionKind] = mapped_column(str_enum(SectionKind), default=SectionKind.TEXT)
    #: The approved revision the public page shows.
    current_revision_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("section_revision.id", use_alter=True)
    )

    profile: Mapped[Profile] = relationship(back_populates="sections")
    current_revision: Mapped[SectionRevision | None] = relationship(
        foreign_keys=[current_revision_id], post_update=True
    )
    revisions: Mapped[list[SectionRevision]] = relationship(
        back_populates="section",
        foreign_keys="SectionRevision.section_id",
        order_by="SectionRevision.number",
    )

    @property
    def body(self) -> str:
        return self.current_revision.body if self.current_revision else ""

    def __repr__(self) -> str:
        return f"<Section {self.profile_id}#{self.anchor}>"


class UpdateType(enum.StrEnum):
    #: Changes what the profile says: stamps Last Updated and notifies subscribers.
    MAJOR = "major"
    #: A correction of form (typo, link): text only, no stamp, no email.
    MINOR = "minor"


class RevisionState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class SectionRevision(db.Model):
    """One version of a section's heading and Markdown body; immutable once approved."""

    __tablename__ = "section_revision"
    __table_args__ = (sa.UniqueConstraint("section_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("section.id"), index=True)
    #: 1, 2, 3… within the section.
    number: Mapped[int]
    heading: Mapped[str] = mapped_column(sa.String(300))
    #: Markdown; footnotes as ``[^label]`` with ``[^label]: text`` definitions in the same body.
    body: Mapped[str] = mapped_column(sa.Text)
    #: NULL for revisions made by the system (imports).
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    #: The revision this one was drafted from; approval checks it is still current.
    base_revision_id: Mapped[int | None] = mapped_column(sa.ForeignKey("section_revision.id"))
    change_note: Mapped[str] = mapped_column(sa.Text, default="")
    update_type: Mapped[UpdateType] = mapped_column(str_enum(UpdateType), default=UpdateType.MAJOR)
    state: Mapped[RevisionState] = mapped_column(
        str_enum(RevisionState), default=RevisionState.DRAFT
    )
    #: When it was last sent for approval (review wait starts here); None while a draft.
    submitted_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    decided_at: Mapped[datetime | None]
    #: The review task this revision was drafted for (NULL for imports and restores).
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("review_task.id"), index=True)
    #: The stamp that published this revision, if it was a major one.
    profile_update_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("profile_update.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    section: Mapped[Section] = relationship(back_populates="revisions", foreign_keys=[section_id])
    base_revision: Mapped[SectionRevision | None] = relationship(
        remote_side=[id], foreign_keys=[base_revision_id]
    )
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    profile_update: Mapped[ProfileUpdate | None] = relationship(back_populates="revisions")

    def __repr__(self) -> str:
        return f"<SectionRevision {self.section_id}.{self.number} {self.state}>"


class ProfileUpdate(db.Model):
    """One "Last Updated" stamp of a profile: the public "What changed" list is made of these."""

    __tablename__ = "profile_update"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(sa.ForeignKey("profile.id"), index=True)
    #: The date shown as "Last Updated" from this stamp on.
    stamped_on: Mapped[date]
    change_note: Mapped[str] = mapped_column(sa.Text, default="")
    #: True when a manager set the date by hand (with a reason in change_note).
    is_manual: Mapped[bool] = mapped_column(default=False)
    #: NULL for stamps made by the system (imports).
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    profile: Mapped[Profile] = relationship(back_populates="updates")
    revisions: Mapped[list[SectionRevision]] = relationship(back_populates="profile_update")
    created_by: Mapped[User | None] = relationship()
