"""Every model, imported in one place so the metadata (and Alembic) sees the whole schema."""

from desk.accounts.models import CountryAssignment, SavedView, Setting, User
from desk.core.audit import AuditEvent
from desk.feedback.models import Attachment, Feedback, FeedbackEvent, ReferenceCounter
from desk.notify.models import OutboxMessage, Subscription
from desk.profiles.models import Country, Profile, ProfileUpdate, Section, SectionRevision
from desk.reviews.models import ReviewTask

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
    "ReviewTask",
    "SavedView",
    "Section",
    "SectionRevision",
    "Setting",
    "Subscription",
    "User",
]
