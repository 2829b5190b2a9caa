"""Email out: the outbox every email is written to, and (with its issue) its delivery."""
