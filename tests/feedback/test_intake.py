"""receive_feedback(): the one way in, whichever channel brought the item."""

from datetime import timedelta
from io import BytesIO

import pytest
import sqlalchemy as sa

from desk.accounts.models import Role
from desk.core.storage import get_storage
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Channel, EventKind, Feedback
from desk.feedback.operations import IncomingFile, Submission, receive_feedback
from desk.notify.models import OutboxMessage
from desk.profiles.models import AutoAssign

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def submit(profile=None, **fields) -> Feedback:
    fields.setdefault("message", "The ratification date in the second paragraph is wrong.")
    result = receive_feedback(Submission(channel=Channel.WEB, profile=profile, **fields))
    db.session.commit()
    return result.feedback


def test_references_count_per_country_and_year(create_profile):
    mali = create_profile("ML")
    france = create_profile("FR")
    year = utcnow().year
    first = submit(mali, message="one")
    second = submit(mali, message="two")
    other = submit(france, message="three")
    assert first.reference == f"ML-{year}-00001"
    assert second.reference == f"ML-{year}-00002"
    assert other.reference == f"FR-{year}-00001"


def test_item_is_routed_to_the_lead_editor_with_a_routed_event(create_profile, create_staff):
    profile = create_profile("ML")
    create_staff(Role.EDITOR, countries=("ML",))
    lead = create_staff(Role.EDITOR, leads=("ML",))
    item = submit(profile)
    assert item.country.code == "ML"
    assert item.assignee_id == lead.id
    kinds = [event.kind for event in item.events]
    assert kinds == [EventKind.RECEIVED, EventKind.ROUTED, EventKind.ASSIGNED]
    routed = item.events[1]
    assert routed.actor_id is None
    assert routed.data["assignment"] == "lead editor"
    assert item.first_response_at is None


def test_least_loaded_editor_gets_the_next_item(create_profile, create_staff):
    profile = create_profile("ML")
    profile.country.auto_assign = AutoAssign.LEAST_LOADED
    busy = create_staff(Role.EDITOR, countries=("ML",))
    idle = create_staff(Role.EDITOR, countries=("ML",))
    first = submit(profile, message="first")
    assert first.assignee_id == busy.id
    second = submit(profile, message="second")
    assert second.assignee_id == idle.id


def test_country_without_editors_is_routed_but_unassigned(create_profile):
    item = submit(create_profile("ML"))
    assert item.country.code == "ML"
    assert item.assignee_id is None
    assert "no active editor" in item.events[1].data["assignment"]


def test_item_without_a_country_goes_to_the_unrouted_queue(app):
    item = submit(None)
    assert item.country_id is None
    assert item.reference.startswith("XX-")
    assert "unrouted" in item.events[1].data["reason"]


def test_double_submit_makes_one_item(create_profile):
    profile = create_profile("ML")
    first = receive_feedback(Submission(channel=Channel.WEB, profile=profile, message="Same."))
    again = receive_feedback(Submission(channel=Channel.WEB, profile=profile, message=" Same. "))
    db.session.commit()
    assert again.is_repeat
    assert again.feedback.id == first.feedback.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 1


def test_the_same_text_after_the_window_is_a_new_item(create_profile):
    profile = create_profile("ML")
    earlier = utcnow() - timedelta(hours=1)
    submit(profile, message="Same.", received_at=earlier)
    later = submit(profile, message="Same.")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 2
    assert later.received_at > earlier


def test_nul_bytes_are_stripped_and_long_text_is_cut(create_profile):
    item = submit(create_profile("ML"), message="a\x00b" + "c" * 30_000, submitter_name="N\x00ame")
    assert "\x00" not in item.message
    assert item.message.startswith("abc")
    assert len(item.message) == 20_000
    assert item.submitter_name == "Name"


def test_files_are_checked_stored_and_hashed(create_profile):
    files = [
        IncomingFile("evidence.pdf", BytesIO(PDF)),
        IncomingFile("report.pdf", BytesIO(b"<html><body>not a pdf</body></html>")),
    ]
    item = submit(create_profile("ML"), files=files)
    kept, refused = item.attachments
    assert kept.content_type == "application/pdf"
    assert kept.size == len(PDF)
    assert len(kept.sha256) == 64
    with get_storage().open(kept.storage_key) as handle:
        assert handle.read() == PDF
    assert refused.storage_key == ""
    assert "report.pdf" in refused.rejection_reason
    assert "HTML" in refused.rejection_reason


def test_acknowledgement_goes_to_the_outbox_when_an_email_is_given(create_profile):
    item = submit(create_profile("ML"), submitter_email="reader@example.org")
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.recipient == "reader@example.org"
    assert item.reference in message.subject
    assert item.reference in message.text
    assert message.dedupe_key == f"feedback.acknowledgement:{item.reference}"
    assert message.message_id.startswith(f"<ack.{item.reference}@")
    assert message.headers["Reply-To"] == "feedback@localhost"


def test_no_acknowledgement_without_an_email(create_profile):
    submit(create_profile("ML"))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


@pytest.mark.parametrize(
    ("message", "sign"),
    [
        ("https://spam.example/buy", "link_only"),
        ("cheap " * 40, "repeated_text"),
    ],
)
def test_suspect_content_is_quarantined_without_acknowledgement(create_profile, message, sign):
    item = submit(create_profile("ML"), message=message, submitter_email="x@example.org")
    assert item.is_quarantined
    assert sign in item.spam_reasons
    assert EventKind.QUARANTINED in [event.kind for event in item.events]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_channel_signs_quarantine_and_ordinary_text_does_not(create_profile):
    profile = create_profile("ML")
    suspect = submit(profile, message="A fair point.", spam_signs=["honeypot"])
    fine = submit(profile, message="See https://example.org/report for the 2011 figures.")
    assert suspect.is_quarantined
    assert not fine.is_quarantined


def test_a_replayed_form_token_is_suspect(create_profile):
    profile = create_profile("ML")
    first = submit(profile, message="First.", form_nonce="abc123")
    second = submit(profile, message="Different text.", form_nonce="abc123")
    assert not first.is_quarantined
    assert second.is_quarantined
    assert "token_replayed" in second.spam_reasons
