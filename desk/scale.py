"""``desk seed-scale``: a large, realistic, synthetic desk for benchmarks and report checks.

``desk seed-scale --feedback N`` makes N feedback items spread over countries, profiles,
sections, channels and the last 18 months, each with its timeline as the desk would have
written it: received, routed, (auto-)assigned, a first event by a person, status changes,
closing with a resolution (updated, no action with a reason, duplicate, spam), a few reopened
and closed again. Feedback that led to a correction has its review task, sometimes sent back
once, the approved revision and, for a major one, the ProfileUpdate that stamped it; items in
review share their section's one open task, some overdue, some with a revision waiting for
approval. Every country gets a lead editor and an editor; there are two managers and an admin,
all with the printed password.

Rows are written with Core ``insert()`` in executemany batches of about 10,000, with ids
handed out here (no ORM object per row, no RETURNING); PostgreSQL's id sequences are moved past
them at the end. The generator is seeded, so the same arguments give the same desk.

Running it again into the same database is refused unless ``--append`` is given (which adds
N more items to the countries, profiles and staff already made).
"""

from __future__ import annotations

import math
import random
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from itertools import accumulate
from typing import Any

import click
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy.dialects import postgresql, sqlite

from desk.accounts.models import CountryAssignment, Role, User
from desk.core.text import slugify
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import (
    Channel,
    EventKind,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
    ReferenceCounter,
    Resolution,
)
from desk.profiles.models import (
    Profile,
    ProfileUpdate,
    RevisionState,
    Section,
    SectionRevision,
    UpdateType,
)
from desk.profiles.operations import ensure_country
from desk.reviews.models import OPEN_TASK_STATES, ReviewTask, TaskState

SPAM_REASONS = '["link_heavy"]'
NO_REASONS = "[]"
#: Staff made by seed-scale have addresses here; their presence marks a seeded database.
STAFF_DOMAIN = "seed-scale.invalid"
PASSWORD = "seed-scale-password"
BATCH = 10_000
DAY = 86400.0

#: Countries in the Monitor's world, busiest first (Mali leads: the reference profile).
COUNTRIES = (
    "ML", "AF", "UA", "SY", "IQ", "YE", "CO", "MM", "KH", "LA", "VN", "BA", "HR", "LB", "SO",
    "SD", "SS", "NE", "BF", "TD", "AO", "MZ", "ZW", "SN", "LY", "AZ", "GE", "TJ", "TH", "LK",
    "PK", "IN", "EG", "DZ", "MA", "ER", "ET", "CD", "CF", "PE",
)  # fmt: skip
TOPICS = ("Cluster Munition Ban Policy", "Mine Ban Policy")
SECTIONS = (
    "Summary",
    "Policy",
    "Convention status",
    "Use, production, transfer and stockpiling",
    "Casualties",
    "Victim assistance",
)
FIRST_NAMES = (
    "Aminata", "Moussa", "Fatoumata", "Ibrahim", "Olena", "Taras", "Layla", "Omar", "Camila",
    "Diego", "Sokha", "Dara", "Mai", "Huong", "Amra", "Ivana", "Nour", "Hassan", "Amina", "Kofi",
)  # fmt: skip
LAST_NAMES = (
    "Traoré", "Keïta", "Coulibaly", "Diallo", "Kovalenko", "Haddad", "Rahimi", "Gómez",
    "Chea", "Nguyen", "Hodžić", "Khalil", "Mensah", "Okafor", "Sow", "Ba",
)  # fmt: skip
CLAIMS = (
    "the date of ratification",
    "the number of casualties recorded last year",
    "the stockpile destruction deadline",
    "the statement at the last meeting of States Parties",
    "the clearance figures for the northern region",
    "the name of the ministry responsible",
    "the vote on the General Assembly resolution",
    "the status of the national implementation law",
)
SOURCES = (
    "the official gazette",
    "the Article 7 report",
    "a press release of the ministry",
    "our own field survey",
    "the operator's annual report",
    "the conference record",
)
NO_ACTION_REASONS = (
    "The profile is already correct",
    "Outside the Monitor's scope",
    "Not enough evidence to change the text",
    "Question answered by email, no change needed",
    "Covered by the next annual update",
)


@dataclass
class SeedResult:
    feedback: int = 0
    events: int = 0
    tasks: int = 0
    revisions: int = 0
    stamps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class AlreadySeeded(click.ClickException):
    """A seed-scale run already wrote into this database."""


@dataclass
class _Country:
    id: int
    code: str
    weight: float
    lead_id: int
    editor_ids: list[int]
    #: (profile id, [(section id, heading)]) per profile.
    profiles: list[tuple[int, list[tuple[int, str]]]]


@dataclass
class _Ids:
    """The next free id of each table, handed out as rows are made."""

    feedback: int
    event: int
    task: int
    revision: int
    update: int

    @classmethod
    def after_existing(cls) -> _Ids:
        def next_id(column: Any) -> int:
            return (db.session.scalar(sa.select(sa.func.max(column))) or 0) + 1

        return cls(
            next_id(Feedback.id),
            next_id(FeedbackEvent.id),
            next_id(ReviewTask.id),
            next_id(SectionRevision.id),
            next_id(ProfileUpdate.id),
        )


def _staff_exists() -> bool:
    return (
        db.session.scalar(sa.select(sa.func.count()).where(User.email.like(f"%@{STAFF_DOMAIN}")))
        or 0
    ) > 0


def _make_staff(
    email: str, name: str, role: Role, password_hash: str, countries: list[tuple[int, bool]]
) -> int:
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, role=role, password_hash=password_hash)
        db.session.add(user)
        db.session.flush()
        for country_id, is_lead in countries:
            db.session.add(
                CountryAssignment(user_id=user.id, country_id=country_id, is_lead=is_lead)
            )
    return user.id


def _setup(count: int, rng: random.Random) -> list[_Country]:
    """Countries, their profiles and sections, and the staff; reused when already there."""
    password_hash = PasswordHasher().hash(PASSWORD)
    names = iter(rng.sample([f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES], 2 * count))
    countries = []
    for rank, code in enumerate(COUNTRIES[:count]):
        country = ensure_country(code)
        lower = code.lower()
        lead_id = _make_staff(
            f"{lower}.lead@{STAFF_DOMAIN}",
            next(names),
            Role.EDITOR,
            password_hash,
            [(country.id, True)],
        )
        editor_id = _make_staff(
            f"{lower}.editor@{STAFF_DOMAIN}",
            next(names),
            Role.EDITOR,
            password_hash,
            [(country.id, False)],
        )
        profiles = []
        for topic in TOPICS:
            profiles.append(_ensure_profile(country.id, country.name, topic))
        countries.append(
            _Country(
                id=country.id,
                code=code,
                weight=1.0 / (rank + 1) ** 0.8,
                lead_id=lead_id,
                editor_ids=[lead_id, editor_id],
                profiles=profiles,
            )
        )
    for number in (1, 2):
        _make_staff(
            f"manager{number}@{STAFF_DOMAIN}", f"Manager {number}", Role.MANAGER, password_hash, []
        )
    _make_staff(f"admin@{STAFF_DOMAIN}", "Admin", Role.ADMIN, password_hash, [])
    db.session.flush()
    return countries


def _ensure_profile(
    country_id: int, country_name: str, topic: str
) -> tuple[int, list[tuple[int, str]]]:
    topic_slug = slugify(topic)
    profile = db.session.scalar(
        sa.select(Profile).where(
            Profile.country_id == country_id,
            Profile.topic_slug == topic_slug,
            Profile.language == "en",
        )
    )
    if profile is None:
        profile = Profile(country_id=country_id, topic=topic, topic_slug=topic_slug)
        db.session.add(profile)
        db.session.flush()
    if not profile.sections:
        for position, heading in enumerate(SECTIONS, start=1):
            section = Section(
                profile_id=profile.id,
                position=position,
                anchor=slugify(heading),
                heading=heading,
                level=2,
            )
            db.session.add(section)
            db.session.flush()
            revision = SectionRevision(
                section_id=section.id,
                number=1,
                heading=heading,
                body=f"{heading} of {country_name}: synthetic text made by seed-scale.",
                state=RevisionState.APPROVED,
            )
            db.session.add(revision)
            db.session.flush()
            section.current_revision_id = revision.id
        db.session.flush()
        db.session.refresh(profile)
    return profile.id, [(section.id, section.heading) for section in profile.sections]


@lru_cache(maxsize=4096)
def _words(text: str) -> str:
    """The search text the inbox keeps for a text (desk.inbox.search); most parts repeat."""
    from desk.inbox.search import words

    return " ".join(words(text))


@dataclass(frozen=True)
class _RawValues:
    """Values as the database driver takes them, so no type processing runs per row."""

    timestamp: Callable[[float], Any]
    day: Callable[[float], Any]


def _raw_values(dialect: str) -> _RawValues:
    """SQLite stores UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' and dates as ISO text (as
    SQLAlchemy's types do); psycopg takes aware datetimes and dates as they are."""
    if dialect == "sqlite":
        return _RawValues(
            lambda ts: (
                datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            ),
            lambda ts: datetime.fromtimestamp(ts, UTC).date().isoformat(),
        )
    return _RawValues(
        lambda ts: datetime.fromtimestamp(ts, UTC),
        lambda ts: datetime.fromtimestamp(ts, UTC).date(),
    )


@cache
def _insert_sql(name: str, dialect: str) -> str:
    """The table's Core insert() compiled once, with named parameters, for the driver's own
    executemany: the rows (dicts of values the driver takes as they are) skip SQLAlchemy's
    per-row parameter processing, which would otherwise cost as much as the database."""
    table = db.metadata.tables[name]
    if dialect == "sqlite":
        compiler_dialect: sa.Dialect = sqlite.dialect(paramstyle="named")
    else:
        compiler_dialect = postgresql.psycopg.dialect()
    return str(sa.insert(table).compile(dialect=compiler_dialect, column_keys=list(table.c.keys())))


def _last_reference_number(prefix: str, year: int) -> int:
    """The highest number handed out for a prefix and year: the counter's, or higher if a run
    was killed before it could move the counter past the references it wrote."""
    counter = db.session.scalar(
        sa.select(ReferenceCounter.value).where(
            ReferenceCounter.prefix == prefix, ReferenceCounter.year == year
        )
    )
    # Numbers are zero-padded to five digits and grow past them: the longest is the highest.
    last = db.session.scalar(
        sa.select(Feedback.reference)
        .where(Feedback.reference.like(f"{prefix}-{year}-%"))
        .order_by(sa.func.length(Feedback.reference).desc(), Feedback.reference.desc())
        .limit(1)
    )
    written = int(last.rsplit("-", 1)[1]) if last else 0
    return max(counter or 0, written)


class _Generator:
    """Makes the rows of one batch of items at a time; keeps what spans batches."""

    def __init__(
        self,
        rng: random.Random,
        countries: list[_Country],
        ids: _Ids,
        now: float,
        months: int,
        manager_ids: list[int],
    ) -> None:
        self.rng = rng
        self.countries = countries
        self.ids = ids
        self.now = now
        self.start = now - months * 30.44 * DAY
        self.manager_ids = manager_ids
        self.counters: dict[tuple[str, int], int] = {}
        self.section_numbers: dict[int, int] = {}
        self.section_current: dict[int, int] = {}
        #: Recent item ids per country, for duplicates to point at.
        self.recent: dict[int, list[int]] = defaultdict(list)
        #: In-review items per section: they share the section's one open task at the end.
        self.in_review: dict[int, list[tuple[int, float, int, int]]] = defaultdict(list)
        self.has_search_text = "search_text" in Feedback.__table__.c
        self.raw = _raw_values(db.session.get_bind().dialect.name)
        self.country_weights = list(accumulate(c.weight for c in countries))
        self.emails: dict[tuple[str, str], str] = {}
        self.section_profile: dict[int, int] = {}
        for country in countries:
            for profile_id, sections in country.profiles:
                for section_id, _ in sections:
                    self.section_profile[section_id] = profile_id

    # -- helpers

    def when(self, ts: float) -> Any:
        """A timestamp as the database driver takes it (see :func:`_raw_values`)."""
        return self.raw.timestamp(ts)

    def day(self, ts: float) -> Any:
        return self.raw.day(ts)

    def reference(self, prefix: str, ts: float) -> str:
        year = datetime.fromtimestamp(ts, UTC).year
        key = (prefix, year)
        value = self.counters.get(key)
        if value is None:
            value = _last_reference_number(prefix, year)
        value += 1
        self.counters[key] = value
        return f"{prefix}-{year}-{value:05d}"

    def delay(self, median_seconds: float, sigma: float) -> float:
        return self.rng.lognormvariate(math.log(median_seconds), sigma)

    def revision_number(self, section_id: int) -> int:
        number = self.section_numbers.get(section_id)
        if number is None:
            number = (
                db.session.scalar(
                    sa.select(sa.func.max(SectionRevision.number)).where(
                        SectionRevision.section_id == section_id
                    )
                )
                or 0
            )
            current = db.session.scalar(
                sa.select(Section.current_revision_id).where(Section.id == section_id)
            )
            if current is not None:
                self.section_current[section_id] = current
        number += 1
        self.section_numbers[section_id] = number
        return number

    # -- one batch

    def batch(self, received: list[float]) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {
            "feedback": [],
            "review_task": [],
            "profile_update": [],
            "section_revision": [],
            "review_task_feedback": [],
            "feedback_event": [],
        }
        for ts in received:
            self.item(ts, rows)
        return rows

    def event(
        self,
        rows: dict[str, list[dict[str, Any]]],
        feedback_id: int,
        kind: EventKind,
        ts: float,
        actor: int | None,
        data: str,
    ) -> None:
        """A timeline row; ``data`` is its JSON text (written directly: json.dumps per event
        would be a tenth of the run)."""
        rows["feedback_event"].append(
            {
                "id": self.ids.event,
                "feedback_id": feedback_id,
                "kind": kind.value,
                "actor_id": actor,
                "data": data,
                "at": self.when(ts),
            }
        )
        self.ids.event += 1

    def item(self, ts: float, rows: dict[str, list[dict[str, Any]]]) -> None:
        rng = self.rng
        fid = self.ids.feedback
        self.ids.feedback += 1
        age = self.now - ts
        channel = rng.choices((Channel.WEB, Channel.EMAIL, Channel.API), (70, 25, 5))[0]
        unrouted = rng.random() < 0.01
        country = (
            None if unrouted else rng.choices(self.countries, cum_weights=self.country_weights)[0]
        )
        profile_id = section_id = None
        heading = "the profile"
        if country is not None:
            profile_id, sections = (
                country.profiles[0] if rng.random() < 0.7 else country.profiles[-1]
            )
            if rng.random() < 0.85:
                section_id, heading = rng.choice(sections)
        prefix = country.code if country else "XX"
        reference = self.reference(prefix, ts)
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        claim = rng.choice(CLAIMS)
        message = (
            f"In {heading}, {claim} does not match {rng.choice(SOURCES)}. "
            f"Please check and correct it."
        )
        subject = f"Correction: {claim}"
        local = self.emails.get((first, last))
        if local is None:
            local = self.emails[(first, last)] = f"{slugify(first)}.{slugify(last)}"
        email = f"{local}{fid % 997}@example.org"

        # What became of it: spam, duplicate, no action, updated; or still open.
        outcome = rng.choices(
            (Resolution.SPAM, Resolution.DUPLICATE, Resolution.NO_ACTION, Resolution.UPDATED),
            (8, 7, 45, 40),
        )[0]
        if unrouted and outcome != Resolution.SPAM:
            outcome = Resolution.NO_ACTION
        assignee = None
        auto_assigned = False
        if country is not None:
            auto_assigned = rng.random() < 0.75
            assignee = country.lead_id if auto_assigned else rng.choice(country.editor_ids)
        responder = assignee or (country.lead_id if country else self.manager_ids[0])

        # The first event by a person: sometimes within the minute, sometimes never yet.
        within_a_minute = rng.random() < 0.03
        first_delay = rng.uniform(5, 59) if within_a_minute else self.delay(10 * 3600, 1.4)
        if outcome == Resolution.SPAM:
            first_delay = min(first_delay, self.delay(2 * 3600, 1.0))
        # Time from receipt to closing, when it closes.
        if outcome == Resolution.SPAM:
            close_delay = first_delay
        elif outcome == Resolution.DUPLICATE:
            close_delay = first_delay + self.delay(6 * 3600, 1.0)
        elif outcome == Resolution.NO_ACTION:
            close_delay = first_delay + self.delay(3 * DAY, 1.1)
        else:
            close_delay = first_delay + self.delay(14 * DAY, 0.7)
        # A few items linger far beyond their expected close: the old backlog.
        if rng.random() < 0.004:
            close_delay = age + DAY
        first_at = ts + first_delay if first_delay < age else None
        closed_at = ts + close_delay if close_delay < age else None
        quarantined = outcome == Resolution.SPAM and closed_at is None and rng.random() < 0.5
        if quarantined:
            first_at = None

        status = FeedbackStatus.NEW
        resolution = None
        note = ""
        duplicate_of = None
        task_at = ts + first_delay + self.delay(DAY, 0.8)
        if closed_at is not None:
            status = FeedbackStatus.CLOSED
            resolution = outcome
        elif first_at is not None and not quarantined:
            status = FeedbackStatus.TRIAGED
            if outcome == Resolution.UPDATED and section_id is not None and task_at < self.now:
                status = FeedbackStatus.IN_REVIEW
        if outcome == Resolution.UPDATED and section_id is None and closed_at is not None:
            resolution = Resolution.NO_ACTION
        if resolution == Resolution.NO_ACTION:
            note = rng.choice(NO_ACTION_REASONS)
        if resolution == Resolution.DUPLICATE:
            earlier = self.recent[country.id if country else 0]
            if earlier:
                duplicate_of = rng.choice(earlier)
            else:
                resolution = Resolution.NO_ACTION
                note = rng.choice(NO_ACTION_REASONS)

        # Timeline.
        self.event(rows, fid, EventKind.RECEIVED, ts, None, f'{{"channel": "{channel.value}"}}')
        if country is None:
            self.event(
                rows, fid, EventKind.ROUTED, ts, None,
                '{"country": null, "reason": "no country could be told"}',
            )  # fmt: skip
        else:
            self.event(
                rows, fid, EventKind.ROUTED, ts, None,
                f'{{"country": "{country.code}", "reason": "profile", '
                '"assignment": "lead editor"}',
            )  # fmt: skip
            if auto_assigned:
                self.event(
                    rows,
                    fid,
                    EventKind.ASSIGNED,
                    ts,
                    None,
                    f'{{"to": {assignee}, "reason": "lead editor"}}',
                )
        if quarantined:
            self.event(rows, fid, EventKind.QUARANTINED, ts, None, '{"signs": ["link_heavy"]}')
        resolved_at = closed_at
        if first_at is not None:
            if not auto_assigned and assignee is not None:
                data = f'{{"to": {assignee}}}'
                self.event(rows, fid, EventKind.ASSIGNED, first_at, responder, data)
            elif resolution == Resolution.SPAM or closed_at == first_at:
                pass
            else:
                kind = rng.choices(
                    (EventKind.NOTE, EventKind.REPLY_SENT, EventKind.STATUS_CHANGED), (3, 3, 4)
                )[0]
                data = '{"text": "Looking into it."}'
                if kind == EventKind.STATUS_CHANGED:
                    data = '{"from": "new", "to": "triaged"}'
                self.event(rows, fid, kind, first_at, responder, data)
        if (
            outcome == Resolution.UPDATED
            and section_id is not None
            and status
            in (
                FeedbackStatus.CLOSED,
                FeedbackStatus.IN_REVIEW,
            )
        ):
            task_at = min(task_at, (closed_at or self.now) - 60)
            if status == FeedbackStatus.IN_REVIEW:
                self.in_review[section_id].append((fid, task_at, assignee or responder, country.id))
            else:
                task_id = self.approved_task(
                    rows, section_id, heading, assignee or responder, task_at, closed_at
                )
                rows["review_task_feedback"].append({"task_id": task_id, "feedback_id": fid})
                data = f'{{"task": {task_id}}}'
                self.event(rows, fid, EventKind.LINKED_TO_TASK, task_at, responder, data)
                data = '{"from": "triaged", "to": "in_review"}'
                self.event(rows, fid, EventKind.STATUS_CHANGED, task_at, responder, data)
        if closed_at is not None:
            reopened = resolution in (Resolution.UPDATED, Resolution.NO_ACTION) and (
                rng.random() < 0.03
            )
            if reopened and resolution == Resolution.NO_ACTION:
                # Closed once, the reader replied, closed again later.
                early = first_at + (closed_at - first_at) * rng.uniform(0.2, 0.5)
                self.event(
                    rows, fid, EventKind.STATUS_CHANGED, early, responder,
                    '{"from": "triaged", "to": "closed", "resolution": "no_action"}',
                )  # fmt: skip
                self.event(
                    rows, fid, EventKind.REPLY_RECEIVED, early + 3600, None,
                    f'{{"from": "{email}", "text": "That is not what I meant."}}',
                )  # fmt: skip
                self.event(
                    rows, fid, EventKind.REOPENED, early + 3600, None,
                    '{"reason": "the reader replied", "from": "closed", "to": "triaged"}',
                )  # fmt: skip
            data = f'{{"from": "triaged", "to": "closed", "resolution": "{resolution.value}"'
            if duplicate_of is not None:
                data += f', "duplicate_of": {duplicate_of}'
            data += "}"
            kind = EventKind.MERGED if duplicate_of is not None else EventKind.STATUS_CHANGED
            self.event(rows, fid, kind, closed_at, responder, data)
        if country is not None:
            recent = self.recent[country.id]
            recent.append(fid)
            if len(recent) > 50:
                del recent[:25]

        row = {
            "id": fid,
            "reference": reference,
            "country_id": country.id if country else None,
            "profile_id": profile_id,
            "section_id": section_id,
            "channel": channel.value,
            "submitter_name": f"{first} {last}",
            "submitter_email": email,
            "submitter_organisation": "",
            "wants_resolution_notice": fid % 3 == 0,
            "subject": subject,
            "message": message,
            "language": "en",
            "status": status.value,
            "resolution": resolution.value if resolution else None,
            "resolution_note": note,
            "assignee_id": assignee,
            "duplicate_of_id": duplicate_of,
            "received_at": self.when(ts),
            "first_response_at": self.when(first_at) if first_at is not None else None,
            "resolved_at": self.when(resolved_at) if resolved_at is not None else None,
            "is_quarantined": quarantined,
            "spam_score": 1.5 if outcome == Resolution.SPAM else 0.0,
            "spam_reasons": SPAM_REASONS if outcome == Resolution.SPAM else NO_REASONS,
            "content_hash": f"{fid:064x}",
            "email_message_id": "",
            "form_nonce": "",
            "submitter_ip": "",
        }
        if self.has_search_text:
            row["search_text"] = (
                " ".join(
                    (_words(reference), _words(subject), _words(message), _words(f"{first} {last}"))
                )
                + " "
                + _words(email)
            )
        rows["feedback"].append(row)

    def revision(
        self,
        rows: dict[str, list[dict[str, Any]]],
        section_id: int,
        heading: str,
        task_id: int,
        author: int,
        state: RevisionState,
        created: float,
        submitted: float,
        decided: float | None,
        update_type: UpdateType = UpdateType.MAJOR,
        update_id: int | None = None,
    ) -> int:
        revision_id = self.ids.revision
        self.ids.revision += 1
        number = self.revision_number(section_id)
        rows["section_revision"].append(
            {
                "id": revision_id,
                "section_id": section_id,
                "number": number,
                "heading": heading,
                "body": f"{heading}: revised synthetic text (revision {number}).",
                "author_id": author,
                "base_revision_id": self.section_current.get(section_id),
                "change_note": "Corrected after reader feedback.",
                "update_type": update_type.value,
                "state": state.value,
                "decided_by_id": self.rng.choice(self.manager_ids) if decided else None,
                "submitted_at": self.when(submitted),
                "decided_at": self.when(decided) if decided is not None else None,
                "task_id": task_id,
                "profile_update_id": update_id,
                "created_at": self.when(created),
            }
        )
        if state == RevisionState.APPROVED:
            self.section_current[section_id] = revision_id
        return revision_id

    def approved_task(
        self,
        rows: dict[str, list[dict[str, Any]]],
        section_id: int,
        heading: str,
        assignee: int,
        created: float,
        approved: float,
    ) -> int:
        rng = self.rng
        task_id = self.ids.task
        self.ids.task += 1
        span = approved - created
        sent_back = rng.random() < 0.2
        draft_at = created + span * 0.15
        submitted = created + span * rng.uniform(0.3, 0.8)
        if sent_back:
            rejected_at = draft_at + (submitted - draft_at) * 0.4
            self.revision(
                rows, section_id, heading, task_id, assignee, RevisionState.REJECTED,
                draft_at, draft_at + (rejected_at - draft_at) * 0.6, rejected_at,
            )  # fmt: skip
            draft_at = rejected_at + (submitted - rejected_at) * 0.3
        update_type = UpdateType.MAJOR if rng.random() < 0.85 else UpdateType.MINOR
        update_id = None
        profile_id = self.section_profile[section_id]
        if update_type == UpdateType.MAJOR:
            update_id = self.ids.update
            self.ids.update += 1
            rows["profile_update"].append(
                {
                    "id": update_id,
                    "profile_id": profile_id,
                    "stamped_on": self.day(approved),
                    "change_note": "Corrected after reader feedback.",
                    "is_manual": False,
                    "created_by_id": self.manager_ids[0],
                    "created_at": self.when(approved),
                }
            )
        self.revision(
            rows, section_id, heading, task_id, assignee, RevisionState.APPROVED,
            draft_at, submitted, approved, update_type, update_id,
        )  # fmt: skip
        rows["review_task"].append(
            {
                "id": task_id,
                "profile_id": profile_id,
                "section_id": section_id,
                "title": f"Review {heading}",
                "description": "Reader feedback on this section.",
                "state": TaskState.APPROVED.value,
                "assignee_id": assignee,
                "reviewer_id": None,
                "due_on": self.day(created + 14 * DAY),
                "created_by_id": assignee,
                "created_at": self.when(created),
                "submitted_at": self.when(submitted),
                "decided_at": self.when(approved),
            }
        )
        return task_id

    def open_tasks(self) -> dict[str, list[dict[str, Any]]]:
        """One open task per section holding in-review items, linked to all of them."""
        rows: dict[str, list[dict[str, Any]]] = {
            "review_task": [],
            "section_revision": [],
            "review_task_feedback": [],
            "feedback_event": [],
        }
        rng = self.rng
        headings = {
            section_id: heading
            for country in self.countries
            for _, sections in country.profiles
            for section_id, heading in sections
        }
        already_open = dict(
            db.session.execute(
                sa.select(ReviewTask.section_id, ReviewTask.id).where(
                    ReviewTask.state.in_(OPEN_TASK_STATES), ReviewTask.section_id.is_not(None)
                )
            ).all()
        )
        for section_id, items in self.in_review.items():
            assignee = items[0][2]
            task_id = already_open.get(section_id)
            if task_id is not None:
                # A section holds one open task at a time: an appended item joins it.
                self.link(rows, items, task_id, assignee)
                continue
            task_id = self.ids.task
            self.ids.task += 1
            created = min(at for _, at, _, _ in items)
            state = rng.choice((TaskState.OPEN, TaskState.IN_PROGRESS, TaskState.SUBMITTED))
            submitted = None
            if state == TaskState.SUBMITTED:
                submitted = created + (self.now - created) * rng.uniform(0.3, 0.95)
                self.revision(
                    rows, section_id, headings[section_id], task_id, assignee,
                    RevisionState.SUBMITTED, created + (submitted - created) * 0.5, submitted,
                    None,
                )  # fmt: skip
            rows["review_task"].append(
                {
                    "id": task_id,
                    "profile_id": self.section_profile[section_id],
                    "section_id": section_id,
                    "title": f"Review {headings[section_id]}",
                    "description": "Reader feedback on this section.",
                    "state": state.value,
                    "assignee_id": assignee,
                    "reviewer_id": None,
                    "due_on": self.day(created + 14 * DAY),
                    "created_by_id": assignee,
                    "created_at": self.when(created),
                    "submitted_at": self.when(submitted) if submitted is not None else None,
                    "decided_at": None,
                }
            )
            self.link(rows, items, task_id, assignee)
        return rows

    def link(
        self,
        rows: dict[str, list[dict[str, Any]]],
        items: list[tuple[int, float, int, int]],
        task_id: int,
        actor: int,
    ) -> None:
        for fid, at, _, _ in items:
            rows["review_task_feedback"].append({"task_id": task_id, "feedback_id": fid})
            data = f'{{"task": {task_id}}}'
            self.event(rows, fid, EventKind.LINKED_TO_TASK, at, actor, data)
            data = '{"from": "triaged", "to": "in_review"}'
            self.event(rows, fid, EventKind.STATUS_CHANGED, at, actor, data)


#: Insert order: every row's references are written before it.
TABLE_ORDER = (
    "feedback",
    "review_task",
    "profile_update",
    "section_revision",
    "review_task_feedback",
    "feedback_event",
)


def _write(rows: dict[str, list[dict[str, Any]]]) -> None:
    connection = db.session.connection()
    for name in TABLE_ORDER:
        batch = rows.get(name)
        if batch:
            connection.exec_driver_sql(_insert_sql(name, connection.dialect.name), batch)


def _received_times(rng: random.Random, count: int, start: float, now: float) -> list[float]:
    """Receipt times, ascending: a little busier lately, fewer at weekends."""
    span = now - start
    times = []
    while len(times) < count:
        u = rng.random()
        ts = start + span * (math.sqrt(u) if rng.random() < 0.3 else u)
        weekday = datetime.fromtimestamp(ts, UTC).weekday()
        if weekday >= 5 and rng.random() < 0.5:
            continue
        times.append(ts)
    times.sort()
    return times


def _sync_counters(generator: _Generator) -> None:
    """Reference counters and id sequences past every row written, so the desk's own inserts
    never collide with the seeded ones (run even when a batch failed)."""
    for (prefix, year), value in generator.counters.items():
        counter = db.session.get(ReferenceCounter, (prefix, year))
        if counter is None:
            db.session.add(ReferenceCounter(prefix=prefix, year=year, value=value))
        else:
            counter.value = max(counter.value, value)
    if db.session.get_bind().dialect.name == "postgresql":
        for table in SEQUENCED_TABLES:
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
            )
    db.session.flush()


#: The tables whose ids seed-scale hands out itself.
SEQUENCED_TABLES = (
    "feedback",
    "feedback_event",
    "review_task",
    "section_revision",
    "profile_update",
)


def _finish(generator: _Generator) -> None:
    """Stamps, reviews and current revisions that follow from the new rows."""
    for section_id, revision_id in generator.section_current.items():
        db.session.execute(
            sa.update(Section)
            .where(Section.id == section_id)
            .values(current_revision_id=revision_id)
        )
    profile_ids = sorted(
        profile_id for country in generator.countries for profile_id, _ in country.profiles
    )
    latest = (
        sa.select(sa.func.max(ProfileUpdate.stamped_on))
        .where(ProfileUpdate.profile_id == Profile.id)
        .scalar_subquery()
    )
    stamped = sa.select(ProfileUpdate.profile_id)
    db.session.execute(
        sa.update(Profile)
        .where(Profile.id.in_(profile_ids), Profile.id.in_(stamped))
        .values(last_updated_on=latest)
    )
    rng = generator.rng
    today = datetime.fromtimestamp(generator.now, UTC).date()
    for profile_id in profile_ids:
        if rng.random() < 0.4:
            reviewed = today - timedelta(days=rng.randint(10, 900))
            db.session.execute(
                sa.update(Profile).where(Profile.id == profile_id).values(reviewed_on=reviewed)
            )
    db.session.flush()


def seed_scale(
    count: int,
    *,
    countries: int = 20,
    seed: int = 1,
    append: bool = False,
    months: int = 18,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """Write ``count`` synthetic items and all that goes with them; commits batch by batch."""
    if not 1 <= countries <= len(COUNTRIES):
        raise click.BadParameter(f"--countries must be 1 to {len(COUNTRIES)}.")
    if _staff_exists() and not append:
        raise AlreadySeeded(
            "This database was already seeded by seed-scale; use --append to add more items."
        )
    say = progress or (lambda _text: None)
    began = time.perf_counter()
    result = SeedResult()
    rng = random.Random(seed)
    setup = _setup(countries, rng)
    manager_ids = list(
        db.session.scalars(
            sa.select(User.id).where(User.role == Role.MANAGER).order_by(User.id).limit(2)
        )
    )
    db.session.commit()
    result.seconds["setup"] = time.perf_counter() - began

    if db.session.get_bind().dialect.name == "sqlite":
        # Index pages stay in memory while a million rows go in (the default cache is 2 MB).
        db.session.execute(sa.text("PRAGMA cache_size = -262144"))
    cpu_began = time.process_time()
    moment = (now or utcnow()).timestamp()
    generator = _Generator(rng, setup, _Ids.after_existing(), moment, months, manager_ids)
    times = _received_times(rng, count, generator.start, moment)
    generating = writing = 0.0
    try:
        for offset in range(0, count, BATCH):
            t0 = time.perf_counter()
            rows = generator.batch(times[offset : offset + BATCH])
            t1 = time.perf_counter()
            _write(rows)
            db.session.commit()
            t2 = time.perf_counter()
            generating += t1 - t0
            writing += t2 - t1
            _count(result, rows)
            say(f"{min(offset + BATCH, count):,} of {count:,} items")
        t0 = time.perf_counter()
        rows = generator.open_tasks()
        _write(rows)
        _count(result, rows)
        _finish(generator)
        _sync_counters(generator)
        db.session.commit()
        writing += time.perf_counter() - t0
    except BaseException:
        # Batches already committed stay: keep the counters and sequences past them.
        db.session.rollback()
        _sync_counters(generator)
        db.session.commit()
        raise
    result.seconds["generate"] = generating
    result.seconds["write"] = writing
    t0 = time.perf_counter()
    _analyze()
    result.seconds["analyze"] = time.perf_counter() - t0
    result.seconds["total"] = time.perf_counter() - began
    result.seconds["cpu"] = time.process_time() - cpu_began
    return result


def _count(result: SeedResult, rows: dict[str, list[dict[str, Any]]]) -> None:
    result.feedback += len(rows.get("feedback", ()))
    result.events += len(rows.get("feedback_event", ()))
    result.tasks += len(rows.get("review_task", ()))
    result.revisions += len(rows.get("section_revision", ()))
    result.stamps += len(rows.get("profile_update", ()))


def _analyze() -> None:
    """Fresh planner statistics, so the reports' plans fit the new size."""
    db.session.execute(sa.text("ANALYZE"))
    db.session.commit()


@click.command("seed-scale")
@click.option("--feedback", "count", type=click.IntRange(1), required=True, help="Items to make.")
@click.option("--countries", type=click.IntRange(1, len(COUNTRIES)), default=20, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--months", type=click.IntRange(1, 120), default=18, show_default=True)
@click.option("--append", is_flag=True, help="Add to a database seed-scale already filled.")
@with_appcontext
def seed_scale_command(count: int, countries: int, seed: int, months: int, append: bool) -> None:
    """Fill the database with N realistic synthetic feedback items (benchmarks, reports)."""
    # Stopped with SIGTERM, still move the counters and sequences past what was committed.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    result = seed_scale(
        count,
        countries=countries,
        seed=seed,
        months=months,
        append=append,
        progress=lambda text: click.echo(text, err=True),
    )
    seconds = result.seconds
    click.echo(
        f"Seeded {result.feedback:,} items, {result.events:,} events, {result.tasks:,} review "
        f"tasks, {result.revisions:,} revisions, {result.stamps:,} stamps in "
        f"{seconds['total']:.1f} s (generate {seconds['generate']:.1f} s, write "
        f"{seconds['write']:.1f} s, analyze {seconds['analyze']:.1f} s; this process used "
        f"{seconds['cpu']:.1f} s of CPU)."
    )
    click.echo(f"Staff: <code>.lead@{STAFF_DOMAIN}, manager1@{STAFF_DOMAIN}; password {PASSWORD}")


def register(app: Flask) -> None:
    app.cli.add_command(seed_scale_command)
