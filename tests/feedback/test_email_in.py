"""Email-in: parsing real-world mail, choosing the country, threading replies, dedupe."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from desk.extensions import db
from desk.feedback.email_in import (
    EmailRefused,
    Outcome,
    deliver_email,
    html_to_text,
    parse_email,
    process_email,
)
from desk.feedback.models import (
    Channel,
    EventKind,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
    Resolution,
)
from desk.feedback.operations import MAX_MESSAGE_CHARS, acknowledgement_message_id
from desk.notify.models import OutboxMessage
from desk.profiles.operations import ensure_country
from tests.feedback.emails import (
    EXE,
    FRENCH_BODY,
    FRENCH_SUBJECT,
    HTML_PAGE,
    INTAKE,
    PDF,
    as_bytes,
    french_report,
    message,
    png,
    reply,
)


@pytest.fixture(autouse=True)
def intake_address(app):
    app.config["DESK_INTAKE_ADDRESS"] = INTAKE


def take(raw: bytes, recipients=()):
    outcome = process_email(raw, recipients)
    db.session.commit()
    return outcome


def item(reference: str) -> Feedback:
    db.session.expire_all()
    return db.session.scalar(sa.select(Feedback).where(Feedback.reference == reference))


def items() -> list[Feedback]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Feedback).order_by(Feedback.id)))


def routed_reason(feedback: Feedback) -> str:
    return next(e for e in feedback.events if e.kind == EventKind.ROUTED).data["reason"]


# --------------------------------------------------------------------------- parsing


def test_french_report_is_decoded_whatever_the_encodings():
    parsed = parse_email(french_report())
    assert parsed.subject == FRENCH_SUBJECT
    assert parsed.from_name == "Renée Touré"
    assert parsed.from_email == "renee@lecteur.example"
    assert parsed.text == FRENCH_BODY.strip()
    assert parsed.language == "fr"
    assert parsed.message_id == "<rapport.1@lecteur.example>"
    assert [f.filename for f in parsed.files] == ["decret-ratification.pdf"]
    assert parsed.files[0].stream.read() == PDF


def test_html_only_mail_becomes_text_without_markup():
    html = (
        "<html><head><style>p {color: red}</style><script>alert('x')</script></head><body>"
        "<p>The <b>second</b> paragraph is wrong.</p><p>See <a href='https://example.org/t'>"
        "the treaty</a>.<br>Thanks</p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    parsed = parse_email(as_bytes(message(body=None, html=html)))
    assert parsed.text == (
        "The second paragraph is wrong.\n\nSee the treaty (https://example.org/t).\nThanks"
        "\n\n- one\n- two"
    )
    assert "<" not in parsed.text and "alert" not in parsed.text and "color" not in parsed.text


def test_plain_part_is_preferred_to_its_html_alternative():
    parsed = parse_email(as_bytes(message(body="Plain words.", html="<p>Rich words.</p>")))
    assert parsed.text == "Plain words."


def test_html_to_text_keeps_entities_and_drops_comments():
    assert html_to_text("<p>caf&eacute; &amp; th&#233;<!-- hidden --></p>") == "café & thé"


def test_unknown_and_wrong_charsets_never_crash():
    raw = (
        b"From: Ren\xe9 <rene@example.fr>\r\n"
        b"Subject: caf\xe9 cr\xe8me\r\n"
        b"Message-ID: <charset@example.fr>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
        b"d\xe9j\xe0 vu\r\n"
        b"--x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"broken \xff\xfe utf-8\r\n"
        b"--x\r\nContent-Type: text/plain; charset=rot13\r\n\r\n"
        b"not a text codec\r\n"
        b"--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!! not base64 ###\r\n"
        b"--x--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.subject == "café crème"
    assert parsed.from_name == "René"
    assert "déjà vu" in parsed.text
    assert "broken \ufffd\ufffd utf-8" in parsed.text
    assert "not a text codec" in parsed.text


def test_rfc2047_subject_in_an_unknown_charset_is_kept_readable():
    raw = b"From: a@example.org\r\nSubject: =?x-unknown?q?caf=E9?= ok\r\n\r\nbody\r\n"
    parsed = parse_email(raw)
    assert parsed.subject.startswith("caf") and parsed.subject.endswith("ok")


MIXED = b'From: a@b.org\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n'


@pytest.mark.parametrize(
    ("raw", "text", "files"),
    [
        (  # the boundary never comes
            MIXED + b"caf\xe9 only\r\n",
            "café only",
            [],
        ),
        (  # cut off in the middle of an attachment, without the closing boundary
            MIXED + b"--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            b"--zz\r\nContent-Type: application/pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBE",
            "hello",
            ["part-1.pdf"],
        ),
        (  # an alternative without any part
            MIXED.replace(b"mixed", b"alternative") + b"--zz--\r\n",
            "",
            [],
        ),
    ],
)
def test_broken_or_missing_parts_keep_what_there_is(raw, text, files):
    parsed = parse_email(raw)
    assert parsed.text == text
    assert [f.filename for f in parsed.files] == files


def test_filenames_in_rfc2231_and_rfc2047_are_decoded():
    raw = (
        b"From: a@example.org\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--x\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''rapport%20d%C3%A9taill%C3%A9.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        b'--x\r\nContent-Type: application/pdf; name="=?utf-8?b?w6l0w6kucGRm?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        b"--x--\r\n"
    )
    assert [f.filename for f in parse_email(raw).files] == ["rapport détaillé.pdf", "été.pdf"]


@pytest.mark.parametrize("filename", [None, "Rapport original.eml"])
def test_forwarded_message_counts_with_its_attachments(filename):
    inner = message(
        subject="Rapport original",
        body="Le texte transféré.",
        sender="Source <source@example.org>",
        message_id="<inner@example.org>",
        attachments=(("annexe.pdf", PDF, "application/pdf"),),
    )
    outer = message(subject="Fwd: Rapport original", body="See the forwarded report.")
    if filename:
        outer.add_attachment(inner, filename=filename)
    else:
        outer.add_attachment(inner)
    parsed = parse_email(as_bytes(outer))
    assert "See the forwarded report." in parsed.text
    assert "Forwarded message" in parsed.text and "Le texte transféré." in parsed.text
    assert [f.filename for f in parsed.files] == ["annexe.pdf"]
    assert parsed.message_id == "<m.1@example.org>"


def test_inline_image_of_an_html_mail_is_an_attachment():
    email = message(body="Plain version", html="<p>See <img src='cid:shot' alt='screenshot'></p>")
    html_part = email.get_payload()[1]
    html_part.add_related(png(), maintype="image", subtype="png", cid="<shot>")
    parsed = parse_email(as_bytes(email))
    assert parsed.text == "Plain version"
    assert [f.filename for f in parsed.files] == ["image-1.png"]


def test_format_flowed_lines_are_joined():
    raw = (
        b"From: a@example.org\r\nSubject: flowed\r\n"
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
        b"This line is \r\nsoft-wrapped.\r\nNext line.\r\n"
    )
    assert parse_email(raw).text == "This line is soft-wrapped.\nNext line."


def test_huge_message_is_cut_at_the_intake_limit_and_says_so():
    body = ("All work and no play. " * 2000).strip()
    parsed = parse_email(as_bytes(message(body=body)))
    assert len(parsed.text) <= MAX_MESSAGE_CHARS
    assert parsed.text.endswith("\n\n(truncated)")


def test_language_comes_from_content_language_first():
    english = message(body="Bonjour, la date est fausse et le texte aussi, merci.")
    english["Content-Language"] = "en-GB"
    assert parse_email(as_bytes(english)).language == "en"
    french = message(body="Short.")
    french["Content-Language"] = "fr-FR"
    assert parse_email(as_bytes(french)).language == "fr"
    assert parse_email(as_bytes(message(body="The date is wrong, thanks."))).language == "en"


# --------------------------------------------------------------------------- new items


def test_french_report_to_the_mali_address_becomes_a_mali_item_with_the_pdf(app):
    outcome = take(french_report())
    assert outcome.outcome == Outcome.CREATED
    feedback = item(outcome.reference)
    assert feedback.reference.startswith("ML-")
    assert feedback.country.code == "ML"
    assert feedback.channel == Channel.EMAIL
    assert feedback.profile is None
    assert feedback.subject == FRENCH_SUBJECT
    assert feedback.message == FRENCH_BODY.strip()
    assert feedback.language == "fr"
    assert (feedback.submitter_name, feedback.submitter_email) == (
        "Renée Touré",
        "renee@lecteur.example",
    )
    assert feedback.email_message_id == "<rapport.1@lecteur.example>"
    [attachment] = feedback.attachments
    assert attachment.original_filename == "decret-ratification.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.storage_key and not attachment.is_rejected
    assert routed_reason(feedback) == "plus-address feedback+ml@desk.example"
    ack = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.recipient == "renee@lecteur.example")
    )
    assert ack.message_id == acknowledgement_message_id(feedback)
    assert ack.headers["In-Reply-To"] == "<rapport.1@lecteur.example>"


def test_plus_tag_is_case_insensitive_and_the_envelope_comes_first(app):
    raw = as_bytes(message(to="Feedback+ML@Desk.Example", message_id="<a@x>"))
    assert take(raw).reference.startswith("ML-")
    raw = as_bytes(message(to="feedback+ml@desk.example", message_id="<b@x>", body="other"))
    outcome = take(raw, ["feedback+sn@desk.example"])
    assert outcome.reference.startswith("SN-")
    assert routed_reason(item(outcome.reference)) == "plus-address feedback+sn@desk.example"


def test_plus_tag_may_be_a_country_slug_and_cc_counts(app):
    ensure_country("CI")
    raw = as_bytes(message(to=INTAKE, headers={"Cc": "feedback+cote-d-ivoire@desk.example"}))
    assert take(raw).reference.startswith("CI-")


def test_plus_tag_at_another_domain_is_not_a_route(app):
    raw = as_bytes(message(to="feedback+ml@elsewhere.example", subject="A typo"))
    outcome = take(raw)
    assert outcome.reference.startswith("XX-")
    feedback = item(outcome.reference)
    assert feedback.country is None
    assert "unrouted" in routed_reason(feedback)


@pytest.mark.parametrize(
    ("subject", "prefix", "reason"),
    [
        ("[ml] typo in the summary", "ML-", "subject tag [ML]"),
        ("About NE-2026-00999 again", "NE-", "subject reference NE-2026-00999"),
        ("Remarque sur la Côte d’Ivoire", "CI-", "subject names Côte d'Ivoire"),
        ("Commentaire sur le Tchad", "TD-", "subject names Chad"),
        ("Guinea-Bissau figures", "GW-", "subject names Guinea-Bissau"),
        ("Niger and Nigeria", "XX-", None),
        ("Just a question", "XX-", None),
    ],
)
def test_subject_picks_the_country_when_the_address_does_not(app, subject, prefix, reason):
    for code in ("CI", "TD", "GN", "GW", "NE", "NG"):
        ensure_country(code)
    outcome = take(as_bytes(message(subject=subject)))
    assert outcome.reference.startswith(prefix)
    if reason:
        assert routed_reason(item(outcome.reference)) == reason


def test_subject_naming_one_topic_of_the_country_picks_the_profile(app, create_profile):
    profile = create_profile("ML", "Cluster Munition Ban Policy")
    create_profile("ML", "Mine Ban Policy")
    outcome = take(
        as_bytes(
            message(to="feedback+ml@desk.example", subject="Mali: cluster munition ban policy")
        )
    )
    assert item(outcome.reference).profile_id == profile.id


def test_refused_files_are_listed_on_the_item(app):
    raw = as_bytes(
        message(
            to="feedback+ml@desk.example",
            attachments=(
                ("report.pdf", PDF, "application/pdf"),
                ("setup.exe", EXE, "application/octet-stream"),
                ("looks-like.pdf", HTML_PAGE, "application/pdf"),
            ),
        )
    )
    outcome = take(raw)
    assert len(outcome.rejected_files) == 2
    feedback = item(outcome.reference)
    kept = [a.original_filename for a in feedback.attachments if not a.is_rejected]
    refused = {
        a.original_filename: a.rejection_reason for a in feedback.attachments if a.is_rejected
    }
    assert kept == ["report.pdf"]
    assert set(refused) == {"setup.exe", "looks-like.pdf"}
    assert "not accepted" in refused["setup.exe"]
    assert "web page" in refused["looks-like.pdf"]


def test_file_over_the_size_limit_is_refused_and_listed(app):
    app.config["DESK_UPLOAD_MAX_FILE_BYTES"] = 1024 * 1024
    big = PDF + b"0" * (1024 * 1024 + 1)
    outcome = take(as_bytes(message(attachments=(("big.pdf", big, "application/pdf"),))))
    [attachment] = item(outcome.reference).attachments
    assert attachment.is_rejected and "larger than 1 MB" in attachment.rejection_reason


def test_reply_to_is_the_submitter_when_it_differs(app):
    raw = as_bytes(
        message(
            sender="Web form <noreply@site.example>", headers={"Reply-To": "Ana <ana@example.org>"}
        )
    )
    feedback = item(take(raw).reference)
    assert (feedback.submitter_name, feedback.submitter_email) == ("Ana", "ana@example.org")


# --------------------------------------------------------------------------- dedupe


def test_the_same_email_twice_is_one_item(app):
    first = take(french_report())
    second = take(french_report())
    assert second.outcome == Outcome.ALREADY
    assert second.reference == first.reference
    assert len(items()) == 1


def test_a_message_without_message_id_is_still_recognised(app):
    raw = as_bytes(message(message_id=None, body="No id here."))
    first = take(raw)
    assert first.outcome == Outcome.CREATED
    assert item(first.reference).email_message_id.endswith("@email-in.invalid>")
    assert take(raw).outcome == Outcome.ALREADY
    assert len(items()) == 1


def test_empty_or_headerless_bytes_are_refused(app):
    with pytest.raises(EmailRefused):
        process_email(b"  \r\n")
    with pytest.raises(EmailRefused):
        process_email(b"\r\njust text, no headers\r\n")


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "auto_reply"},
    ],
)
def test_automatic_replies_are_dropped(app, headers):
    outcome = take(as_bytes(message(subject="Out of office", headers=headers)))
    assert outcome.outcome == Outcome.IGNORED
    assert items() == []


def test_desk_own_mail_is_dropped(app):
    outcome = take(as_bytes(message(sender="Desk <desk@localhost>")))
    assert outcome.outcome == Outcome.IGNORED


# --------------------------------------------------------------------------- replies


def replies(feedback: Feedback) -> list[FeedbackEvent]:
    return [e for e in feedback.events if e.kind == EventKind.REPLY_RECEIVED]


def test_reply_to_the_acknowledgement_threads_onto_the_item(app):
    original = item(take(french_report()).reference)
    ack_id = acknowledgement_message_id(original)
    outcome = take(
        reply(
            in_reply_to=ack_id,
            attachments=(
                ("decret-2.pdf", PDF, "application/pdf"),
                ("virus.exe", EXE, "application/octet-stream"),
            ),
        )
    )
    assert outcome.outcome == Outcome.REPLY
    assert outcome.reference == original.reference
    assert len(items()) == 1
    feedback = item(original.reference)
    [event] = replies(feedback)
    assert event.actor_id is None
    assert event.data["from"] == "renee@lecteur.example"
    assert event.data["subject"] == "Re: We received your feedback"
    assert event.data["text"].startswith("One more thing: the decree number is 2010-012.")
    assert event.data["message_id"] == "<reply.1@lecteur.example>"
    assert event.data["files"] == ["decret-2.pdf"]
    assert len(event.data["rejected_files"]) == 1
    names = [(a.original_filename, a.is_rejected) for a in feedback.attachments]
    assert names == [
        ("decret-ratification.pdf", False),
        ("decret-2.pdf", False),
        ("virus.exe", True),
    ]
    acks = db.session.scalars(sa.select(OutboxMessage.kind)).all()
    assert acks == ["feedback.acknowledgement"]


def test_reply_found_by_references_or_by_the_reference_in_the_subject(app):
    original = item(take(french_report()).reference)
    by_references = take(
        reply(
            in_reply_to=None,
            references="<other@x> <rapport.1@lecteur.example>",
            message_id="<r1@x>",
        )
    )
    assert by_references.outcome == Outcome.REPLY
    by_subject = take(
        reply(
            in_reply_to=None,
            subject=f"Re: We received your feedback [{original.reference}]",
            message_id="<r2@x>",
        )
    )
    assert by_subject.outcome == Outcome.REPLY
    assert len(replies(item(original.reference))) == 2
    assert len(items()) == 1


def test_the_same_reply_twice_is_one_event(app):
    original = item(take(french_report()).reference)
    raw = reply(in_reply_to=acknowledgement_message_id(original))
    assert take(raw).outcome == Outcome.REPLY
    again = take(raw)
    assert again.outcome == Outcome.ALREADY and again.reference == original.reference
    assert len(replies(item(original.reference))) == 1


def test_reply_reopens_an_item_closed_with_no_action(app):
    feedback = item(take(french_report()).reference)
    feedback.status, feedback.resolution = FeedbackStatus.CLOSED, Resolution.NO_ACTION
    feedback.resolution_note = "Already correct."
    db.session.commit()
    take(reply(in_reply_to=acknowledgement_message_id(feedback)))
    feedback = item(feedback.reference)
    assert feedback.status == FeedbackStatus.TRIAGED
    assert feedback.resolution is None and feedback.resolved_at is None
    reopened = next(e for e in feedback.events if e.kind == EventKind.REOPENED)
    assert reopened.data["previous_resolution"] == "no_action"
    assert reopened.data["previous_note"] == "Already correct."


def test_reply_to_spam_is_kept_but_does_not_reopen(app):
    feedback = item(take(french_report()).reference)
    feedback.status, feedback.resolution = FeedbackStatus.CLOSED, Resolution.SPAM
    db.session.commit()
    take(reply(in_reply_to=acknowledgement_message_id(feedback)))
    feedback = item(feedback.reference)
    assert feedback.status == FeedbackStatus.CLOSED
    assert len(replies(feedback)) == 1


def test_reply_to_a_duplicate_goes_to_the_item_it_duplicates(app):
    original = item(take(as_bytes(message(message_id="<o@x>", body="first"))).reference)
    duplicate = item(take(as_bytes(message(message_id="<d@x>", body="second"))).reference)
    duplicate.status, duplicate.resolution = FeedbackStatus.CLOSED, Resolution.DUPLICATE
    duplicate.duplicate_of = original
    db.session.commit()
    outcome = take(reply(in_reply_to="<d@x>"))
    assert outcome.reference == original.reference
    assert len(replies(item(original.reference))) == 1
    assert replies(item(duplicate.reference)) == []


def test_deliver_email_commits_in_its_own_context(app):
    outcome = deliver_email(app, french_report())
    assert outcome.outcome == Outcome.CREATED
    assert item(outcome.reference).country.code == "ML"
