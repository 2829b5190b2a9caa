"""Every job module, imported in one place so web processes and workers know the same jobs."""

from desk.feedback import tasks as feedback_tasks
from desk.notify import tasks as notify_tasks
from desk.privacy import tasks as privacy_tasks  # noqa: F401
from desk.reviews import tasks as review_tasks  # noqa: F401

__all__ = ["feedback_tasks", "notify_tasks"]
