"""The item's timeline as staff read it: one sentence per event, with its text where it has one."""

from __future__ import annotations

from dataclasses import dataclass, field

from desk.accounts.models import User
from desk.feedback.models import EventKind, FeedbackEvent
from desk.inbox.quarantine import describe_signs

CHANNEL_WORDS = {"web": "the web form", "email": "email", "api": "the intake API"}
RESOLUTION_WORDS = {
    "updated": "updated (the profile was revised)",
    "no_action": "no action",
    "duplicate": "duplicate",
    "spam": "spam",
}


def _words(value: object) -> str:
    return str(value or "").replace("_", " ")


@dataclass
class Entry:
    event: FeedbackEvent
    title: str
    #: Who acted: a person's name, or "Desk" for intake, routing and jobs.
    actor: str
    #: A note's, reply's or reason's text, shown as written.
    body: str = ""
    subject: str = ""
    details: list[str] = field(default_factory=list)
    #: A reference this event points at (the original or the duplicate), linked on the page.
    link: str = ""

    @property
    def kind(self) -> str:
        return str(self.event.kind)

    @property
    def by_person(self) -> bool:
        return self.event.actor_id is not None


def user_ids_named(events: list[FeedbackEvent]) -> set[int]:
    """The users an event's data names (an assignment's new and previous holder)."""
    ids: set[int] = set()
    for event in events:
        if event.kind == EventKind.ASSIGNED:
            ids.update(v for v in (event.data.get("to"), event.data.get("from")) if v)
    return ids


def describe(event: FeedbackEvent, users: dict[int, User]) -> Entry:
    data = event.data or {}
    actor = event.actor.name if event.actor is not None else "Desk"
    entry = Entry(event=event, title=_words(event.kind).capitalize(), actor=actor)
    kind = event.kind
    if kind == EventKind.RECEIVED:
        entry.title = f"Received by {CHANNEL_WORDS.get(data.get('channel'), 'Desk')}"
    elif kind == EventKind.ROUTED:
        if data.get("country"):
            entry.title = f"Routed to {data['country']}"
            if data.get("from"):
                entry.title += f" (was {data['from']})"
        else:
            entry.title = "Left unrouted"
        entry.details = [_words(data.get(k)) for k in ("reason", "assignment") if data.get(k)]
    elif kind == EventKind.ASSIGNED:
        to = users.get(data.get("to") or 0)
        entry.title = f"Assigned to {to.name}" if to else "Unassigned"
        if data.get("from") and users.get(data["from"]):
            entry.details.append(f"was {users[data['from']].name}")
        if data.get("reason"):
            entry.details.append(data["reason"])
    elif kind == EventKind.STATUS_CHANGED:
        if data.get("resolution"):
            words = RESOLUTION_WORDS.get(data["resolution"], _words(data["resolution"]))
            entry.title = f"Closed as {words}"
            if data["resolution"] != "duplicate":
                entry.body = data.get("note", "")
        else:
            entry.title = f"Status {_words(data.get('from'))} → {_words(data.get('to'))}"
    elif kind == EventKind.NOTE:
        entry.title = "Internal note"
        entry.body = data.get("text", "")
    elif kind == EventKind.REPLY_SENT:
        entry.title = f"Replied to {data.get('to', 'the reader')}"
        entry.subject = data.get("subject", "")
        entry.body = data.get("text", "")
    elif kind == EventKind.REPLY_RECEIVED:
        sender = data.get("from_name") or data.get("from") or "the reader"
        entry.title = f"{sender} replied"
        entry.actor = data.get("from", "") or "the reader"
        entry.subject = data.get("subject", "")
        entry.body = data.get("text", "")
        entry.details = [f"file: {name}" for name in data.get("files", [])]
        entry.details += [f"refused: {why}" for why in data.get("rejected_files", [])]
    elif kind == EventKind.LINKED_TO_TASK:
        entry.title = "Linked to a review task"
        if data.get("title"):
            entry.details.append(data["title"])
    elif kind == EventKind.MERGED:
        if data.get("into"):
            entry.title = f"Merged into {data['into']}"
            entry.link = data["into"]
        elif data.get("from"):
            entry.title = f"{data['from']} merged into this item"
            entry.link = data["from"]
            entry.details = [f"file: {name}" for name in data.get("files", [])]
            entry.details += [f"with {ref}" for ref in data.get("also", [])]
        elif data.get("unmerged"):
            entry.title = f"{data['unmerged']} reopened: no longer a duplicate of this item"
            entry.link = data["unmerged"]
    elif kind == EventKind.REOPENED:
        entry.title = "Reopened"
        if data.get("previous_resolution"):
            words = RESOLUTION_WORDS.get(data["previous_resolution"], "")
            entry.title += f" (was closed as {words or _words(data['previous_resolution'])})"
        entry.body = data.get("reason", "")
    elif kind == EventKind.QUARANTINED:
        entry.title = "Held in quarantine"
        entry.details = describe_signs(list(data.get("signs", [])))
    elif kind == EventKind.RELEASED:
        entry.title = "Released from quarantine"
    return entry
