"""A small history of feedback, tasks and revisions whose every figure was worked out by hand.

The clock is fixed at NOW (Tuesday 31 March 2026, 12:00 UTC) and the reports cover
1 January – 31 March 2026. tests/reports/test_metrics.py lists the expected figures with the
arithmetic behind them.

Mali (ML), profile "Cluster Munition Ban Policy" with sections Overview (s1) and Policy (s2):

====  ==================  =================  ===========================================
item  received            first response     then
====  ==================  =================  ===========================================
F1    01-05 10:00         +40 s (same min.)  closed no_action 01-06 10:00 (1 d)
F2    01-10 09:00 email   +24 h              linked to T1; closed updated 01-20 09:00 (10 d)
F3    02-01 00:00         +96 h              closed 02-10, reopened, closed no_action 03-15
F4    02-14 12:00         never              new, unassigned
F5    03-01 08:00         +6 h               closed duplicate of F1 03-02 08:00
F6    03-10 00:00         +1 h               closed spam 03-10 01:00
F7    03-29 12:00         +1.5 h             triaged (2 days old)
F8    03-28 12:00         never              new, exactly 3 days old
F9    2025-12-20 00:00    +1 d               in review, linked to T2 (before the range)
F10   03-23 12:00         +30 s              triaged, exactly 8 days old
====  ==================  =================  ===========================================

Niger (NE), profile "Mine Ban Policy" with section Overview (s3): N1 received 01-15 00:00,
answered +12 h, linked to T3, closed updated 02-14 00:00 (exactly 30 days); N2 received 03-20,
never answered, in quarantine. U1: unrouted, received 02-20 00:00, never answered.

Tasks: T1 (ML s1) created 01-11 09:00, revision r1 created 01-12 09:00 and sent back 01-13
09:00, r2 created 01-14 09:00, task submitted 01-15 09:00, r2 approved 01-17 09:00 and
published by stamp PU1 at 01-20 09:00. T2 (ML s2) created 03-20, due 03-25, submitted 03-25
00:00 with r3 (created 03-24) still waiting. T3 (NE s3) created 01-16, r4 created 01-20,
submitted 01-21, approved 02-13 00:00, published by PU2 at 02-14 00:00. T4 (ML s1) cancelled.
T5 (NE s3) created 03-30, in progress, due 03-31 (today: not overdue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from itertools import count

import pytest
from argon2 import PasswordHasher

from desk.accounts.models import Role, User
from desk.accounts.operations import create_user
from desk.extensions import db
from desk.feedback.models import (
    Channel,
    EventKind,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
    Resolution,
)
from desk.profiles.models import (
    Profile,
    ProfileUpdate,
    RevisionState,
    Section,
    SectionRevision,
)
from desk.profiles.operations import ensure_country
from desk.reviews.models import ReviewTask, TaskState
from tests.factories import PASSWORD

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
FROM = date(2026, 1, 1)
TO = date(2026, 3, 31)


def at(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, year: int = 2026):
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class History:
    ml_editor: User
    ne_editor: User
    manager: User
    admin: User
    ml_profile: Profile
    ne_profile: Profile
    old_ml_profile: Profile
    sections: dict[str, Section]
    items: dict[str, Feedback]
    tasks: dict[str, ReviewTask]


_serial = count(1)


@cache
def password_hash() -> str:
    """One argon2 hash of the factories' password for every account here (hashing is slow)."""
    return PasswordHasher().hash(PASSWORD)


def staff(email: str, name: str, role: Role, countries: tuple[str, ...] = ()) -> User:
    user = create_user(
        email, name=name, role=role, countries=[ensure_country(code) for code in countries]
    )
    user.password_hash = password_hash()
    return user


@pytest.fixture
def history(app, create_profile) -> History:
    ml_editor = staff("awa@desk.test", "Awa Diallo", Role.EDITOR, ("ML",))
    ne_editor = staff("ibrahim@desk.test", "Ibrahim Moussa", Role.EDITOR, ("NE",))
    manager = staff("manager@desk.test", "Mo Manager", Role.MANAGER)
    admin = staff("admin@desk.test", "Ada Admin", Role.ADMIN)
    ml_profile = create_profile(
        "ML",
        sections=[("Overview", "Text."), ("Policy", "Text.")],
        last_updated_on=date(2026, 1, 20),
    )
    old_ml_profile = create_profile("ML", "Mine Ban Policy", sections=[("Overview", "Text.")])
    ne_profile = create_profile("NE", "Mine Ban Policy", sections=[("Overview", "Text.")])
    ne_profile.last_updated_on = date(2024, 1, 1)
    ne_profile.reviewed_on = date(2025, 5, 1)
    s1, s2 = ml_profile.sections
    (s3,) = ne_profile.sections
    ml, ne = ml_profile.country, ne_profile.country

    def item(
        name: str,
        received: datetime,
        *,
        country=ml,
        profile=ml_profile,
        section=s1,
        first_response: datetime | None = None,
        status: FeedbackStatus = FeedbackStatus.NEW,
        resolution: Resolution | None = None,
        resolved: datetime | None = None,
        assignee: User | None = ml_editor,
        channel: Channel = Channel.WEB,
        note: str = "",
        quarantined: bool = False,
    ) -> Feedback:
        prefix = country.code if country else "XX"
        feedback = Feedback(
            reference=f"{prefix}-{received.year}-{next(_serial):05d}",
            country=country,
            profile=profile,
            section=section,
            channel=channel,
            message=f"Feedback {name}",
            received_at=received,
            first_response_at=first_response,
            status=status,
            resolution=resolution,
            resolution_note=note,
            resolved_at=resolved,
            assignee=assignee,
            content_hash=f"{name:0>64}",
            is_quarantined=quarantined,
        )
        db.session.add(feedback)
        db.session.add(FeedbackEvent(feedback=feedback, kind=EventKind.RECEIVED, at=received))
        if first_response is not None:
            db.session.add(
                FeedbackEvent(
                    feedback=feedback,
                    kind=EventKind.NOTE,
                    actor_id=None if assignee is None else assignee.id,
                    at=first_response,
                )
            )
        return feedback

    closed = FeedbackStatus.CLOSED
    items = {
        "F1": item(
            "F1",
            at(1, 5, 10),
            first_response=at(1, 5, 10, 0, 40),
            status=closed,
            resolution=Resolution.NO_ACTION,
            resolved=at(1, 6, 10),
            note="Already correct",
        ),
        "F2": item(
            "F2",
            at(1, 10, 9),
            first_response=at(1, 11, 9),
            status=closed,
            resolution=Resolution.UPDATED,
            resolved=at(1, 20, 9),
            channel=Channel.EMAIL,
        ),
        "F3": item(
            "F3",
            at(2, 1),
            first_response=at(2, 5),
            status=closed,
            resolution=Resolution.NO_ACTION,
            resolved=at(3, 15),
            note="  Already correct ",
        ),
        "F4": item("F4", at(2, 14, 12), assignee=None),
        "F5": item(
            "F5",
            at(3, 1, 8),
            first_response=at(3, 1, 14),
            status=closed,
            resolution=Resolution.DUPLICATE,
            resolved=at(3, 2, 8),
        ),
        "F6": item(
            "F6",
            at(3, 10),
            first_response=at(3, 10, 1),
            status=closed,
            resolution=Resolution.SPAM,
            resolved=at(3, 10, 1),
        ),
        "F7": item(
            "F7", at(3, 29, 12), first_response=at(3, 29, 13, 30), status=FeedbackStatus.TRIAGED
        ),
        "F8": item("F8", at(3, 28, 12), assignee=None),
        "F9": item(
            "F9",
            at(12, 20, year=2025),
            first_response=at(12, 21, year=2025),
            status=FeedbackStatus.IN_REVIEW,
            section=s2,
        ),
        "F10": item(
            "F10",
            at(3, 23, 12),
            first_response=at(3, 23, 12, 0, 30),
            status=FeedbackStatus.TRIAGED,
            section=s2,
        ),
        "N1": item(
            "N1",
            at(1, 15),
            country=ne,
            profile=ne_profile,
            section=s3,
            first_response=at(1, 15, 12),
            status=closed,
            resolution=Resolution.UPDATED,
            resolved=at(2, 14),
            assignee=ne_editor,
        ),
        "N2": item(
            "N2",
            at(3, 20),
            country=ne,
            profile=ne_profile,
            section=s3,
            assignee=None,
            quarantined=True,
        ),
        "U1": item("U1", at(2, 20), country=None, profile=None, section=None, assignee=None),
    }
    items["F5"].duplicate_of = items["F1"]
    # F3's timeline: closed, reopened, closed again (resolved_at holds the final close).
    for kind, moment in (
        (EventKind.STATUS_CHANGED, at(2, 10)),
        (EventKind.REOPENED, at(2, 12)),
        (EventKind.STATUS_CHANGED, at(3, 15)),
    ):
        db.session.add(
            FeedbackEvent(feedback=items["F3"], kind=kind, actor_id=ml_editor.id, at=moment)
        )
    db.session.flush()

    def task(profile, section, created, state, **fields) -> ReviewTask:
        task = ReviewTask(
            profile=profile,
            section=section,
            title=f"Review {section.heading} ({profile.country.code})",
            state=state,
            created_at=created,
            assignee=ml_editor if profile.country == ml else ne_editor,
            **fields,
        )
        db.session.add(task)
        db.session.flush()
        return task

    def revision(section, number, task, state, created, submitted, decided=None, update=None):
        db.session.add(
            SectionRevision(
                section=section,
                number=number,
                heading=section.heading,
                body="New text.",
                state=state,
                created_at=created,
                submitted_at=submitted,
                decided_at=decided,
                task_id=task.id,
                profile_update=update,
                author=task.assignee,
            )
        )

    t1 = task(
        ml_profile,
        s1,
        at(1, 11, 9),
        TaskState.APPROVED,
        submitted_at=at(1, 15, 9),
        decided_at=at(1, 17, 9),
    )
    pu1 = ProfileUpdate(profile=ml_profile, stamped_on=date(2026, 1, 20), created_at=at(1, 20, 9))
    revision(s1, 2, t1, RevisionState.REJECTED, at(1, 12, 9), at(1, 12, 9), at(1, 13, 9))
    revision(s1, 3, t1, RevisionState.APPROVED, at(1, 14, 9), at(1, 15, 9), at(1, 17, 9), pu1)
    t1.feedback.append(items["F2"])

    t2 = task(
        ml_profile,
        s2,
        at(3, 20),
        TaskState.SUBMITTED,
        submitted_at=at(3, 25),
        due_on=date(2026, 3, 25),
    )
    revision(s2, 2, t2, RevisionState.SUBMITTED, at(3, 24), at(3, 25))
    t2.feedback.append(items["F9"])

    t3 = task(
        ne_profile,
        s3,
        at(1, 16),
        TaskState.APPROVED,
        submitted_at=at(1, 21),
        decided_at=at(2, 13),
    )
    pu2 = ProfileUpdate(profile=ne_profile, stamped_on=date(2026, 2, 14), created_at=at(2, 14))
    revision(s3, 2, t3, RevisionState.APPROVED, at(1, 20), at(1, 21), at(2, 13), pu2)
    t3.feedback.append(items["N1"])

    t4 = task(ml_profile, s1, at(2, 1), TaskState.CANCELLED, decided_at=at(2, 2))
    t5 = task(ne_profile, s3, at(3, 30), TaskState.IN_PROGRESS, due_on=date(2026, 3, 31))
    db.session.commit()
    return History(
        ml_editor=ml_editor,
        ne_editor=ne_editor,
        manager=manager,
        admin=admin,
        ml_profile=ml_profile,
        ne_profile=ne_profile,
        old_ml_profile=old_ml_profile,
        sections={"s1": s1, "s2": s2, "s3": s3},
        items=items,
        tasks={"T1": t1, "T2": t2, "T3": t3, "T4": t4, "T5": t5},
    )
