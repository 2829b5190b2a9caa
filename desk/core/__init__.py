"""Shared mechanisms only: database base, time, audit, security headers, templating, locale."""
