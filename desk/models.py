"""Every model, imported in one place so the metadata (and Alembic) sees the whole schema."""

from desk.accounts.models import CountryAssignment, User
from desk.core.audit import AuditEvent
from desk.feedback.models import Attachment, Feedback, FeedbackEvent, ReferenceCounter
from desk.notify.models import OutboxMessage
from desk.profiles.models import Country, Profile, ProfileUpdate, Section, SectionRevision

__all__ = [
    "Attachment",
    "AuditEvent",
    "Country",
    "CountryAssignment",
    "Feedback",
    "FeedbackEvent",
    "OutboxMessage",
    "Profile",
    "ProfileUpdate",
    "ReferenceCounter",
    "Section",
    "SectionRevision",
    "User",
]
