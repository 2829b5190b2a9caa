"""Every job module, imported in one place so web processes and workers know the same jobs."""

from desk.notify import tasks as notify_tasks

__all__ = ["notify_tasks"]
