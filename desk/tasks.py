"""Every job module, imported in one place so web processes and workers know the same jobs."""

from desk.notify import tasks as notify_tasks
from desk.reviews import tasks as review_tasks  # noqa: F401

__all__ = ["notify_tasks"]
