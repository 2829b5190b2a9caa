"""The reader's feedback form: the links to it, the page, what it takes, and what it refuses."""

from __future__ import annotations

import re
import struct
import zlib
from io import BytesIO

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from desk.core.locale import compile_catalogues
from desk.core.storage import StorageError
from desk.extensions import db
from desk.feedback.models import Channel, EventKind, Feedback
from desk.notify.models import OutboxMessage
from desk.profiles.models import SectionKind

MALI = "/profiles/mali/cluster-munition-ban-policy"
FORM = f"{MALI}/feedback"
SECTIONS = [
    ("Commitment to the Convention on Cluster Munitions", "Mali signed in 2008."),
    ("Convention on Cluster Munitions status", "State Party", SectionKind.FIELD),
    ("Use, production, transfer, and stockpiling", "No use is known."),
]
USE = "use-production-transfer-and-stockpiling"
MESSAGE = "The ratification date in the second paragraph should be 30 June 2010."
HIDDEN = re.compile(r'name="(csrf_token|token)" type="hidden" value="([^"]*)"')
REFERENCE = re.compile(r'<strong class="reference">([A-Z]{2}-\d{4}-\d{5})</strong>')


def minimal_pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A real RGB PNG: signature, IHDR, one zlib-compressed IDAT, IEND, each with its CRC."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xcc\x20\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def hidden_fields(html: str) -> dict[str, str]:
    fields = dict(HIDDEN.findall(html))
    assert set(fields) == {"csrf_token", "token"}, "the form lacks its CSRF or timing token"
    return fields


def send(
    client: FlaskClient,
    path: str = FORM,
    *,
    files: tuple[tuple[str, bytes], ...] = (),
    headers: dict[str, str] | None = None,
    hidden: dict[str, str] | None = None,
    **fields: str,
) -> TestResponse:
    """Open the form as a browser would, fill it in and send it (multipart, like the browser)."""
    if hidden is None:
        hidden = hidden_fields(client.get(path, headers=headers).get_data(as_text=True))
    data: dict[str, object] = {**hidden, "message": MESSAGE, **fields}
    data["attachments"] = [(BytesIO(content), name) for name, content in files]
    return client.post(path, data=data, headers=headers, content_type="multipart/form-data")


def thanks_page(
    client: FlaskClient, response: TestResponse, headers: dict[str, str] | None = None
) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    page = client.get(response.headers["Location"], headers=headers)
    assert page.status_code == 200
    return page.get_data(as_text=True)


def reference_on(html: str) -> str:
    match = REFERENCE.search(html)
    assert match, "the thank-you page shows no reference"
    return match.group(1)


def items() -> list[Feedback]:
    return list(db.session.scalars(sa.select(Feedback).order_by(Feedback.id)))


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def mali(app, create_profile):
    # Tests that are not about timing send the form at once.
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    return create_profile("ML", sections=SECTIONS)


# --------------------------------------------------------------------------- the profile page


def test_profile_page_links_to_the_form_for_the_profile_and_each_section(client, mali):
    html = client.get(MALI).get_data(as_text=True)
    assert html.count(f'href="{FORM}"') == 2
    assert "Send feedback on this profile" in html
    for anchor in (
        "commitment-to-the-convention-on-cluster-munitions",
        "convention-on-cluster-munitions-status",
        USE,
    ):
        link = re.search(rf'<a class="suggest-link" href="{FORM}\?section={anchor}">([^<]+)', html)
        assert link, f"no correction link for {anchor}"
        assert link.group(1) == "Suggest a correction to this section"
    assert "<form" not in html
    assert "csrf_token" not in html


def test_profile_page_links_are_french_for_a_french_browser(client, mali):
    html = client.get(MALI, headers={"Accept-Language": "fr-FR,fr;q=0.9"}).get_data(as_text=True)
    assert f'href="{FORM}" lang="fr">Envoyer un commentaire sur ce profil</a>' in html
    assert "Proposer une correction à cette section" in html


def test_links_of_a_french_profile_keep_its_language(client, create_profile):
    create_profile("SN", "Politique d'interdiction", language="fr")
    html = client.get("/profiles/senegal/politique-d-interdiction?lang=fr").get_data(as_text=True)
    assert 'href="/profiles/senegal/politique-d-interdiction/feedback?lang=fr"' in html
    assert "/feedback?lang=fr&amp;section=overview" in html


# --------------------------------------------------------------------------- the form page


def test_form_lists_the_sections_and_preselects_the_one_asked_for(client, mali):
    html = client.get(f"{FORM}?section={USE}").get_data(as_text=True)
    options = re.findall(r"<option( selected)? value=\"([^\"]*)\">([^<]*)</option>", html)
    assert [(value, label) for _, value, label in options] == [
        ("", "The profile as a whole"),
        ("commitment-to-the-convention-on-cluster-munitions", SECTIONS[0][0]),
        ("convention-on-cluster-munitions-status", SECTIONS[1][0]),
        (USE, SECTIONS[2][0]),
    ]
    assert [value for selected, value, _ in options if selected] == [USE]

    unknown = client.get(f"{FORM}?section=no-such-section").get_data(as_text=True)
    assert '<option selected value="">' in unknown


def test_form_page_has_every_field_the_privacy_line_and_the_email_address(app, client, mali):
    app.config["DESK_INTAKE_ADDRESS"] = "feedback@monitor.example"
    response = client.get(FORM)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for name in ("message", "section", "name", "email", "organisation", "notify", "website"):
        assert f'name="{name}"' in html
    assert re.search(r'<input[^>]*multiple name="attachments" type="file"', html)
    assert "It will not be published or made available online." in html
    assert "feedback+ml@monitor.example" in html
    honeypot = re.search(r'<div class="hp-field" aria-hidden="true">(.*?)</div>', html, re.S)
    assert honeypot and 'autocomplete="off"' in honeypot.group(1)
    assert 'tabindex="-1"' in honeypot.group(1)
    assert 'data-max-files="10"' in html
    assert 'data-max-file-bytes="20971520"' in html
    assert "private" in response.headers["Cache-Control"]


def test_unknown_profile_has_no_form(client, mali):
    assert client.get("/profiles/atlantis/cluster-munition-ban-policy/feedback").status_code == 404


# --------------------------------------------------------------------------- sending


def test_feedback_with_a_pdf_and_a_png_is_received_routed_and_acknowledged(client, mali):
    response = send(
        client,
        section=USE,
        name="Awa Traoré",
        email="awa@example.org",
        organisation="Réseau des journalistes",
        notify="y",
        files=(("report.pdf", minimal_pdf()), ("photo.png", tiny_png())),
    )
    html = thanks_page(client, response)
    reference = reference_on(html)
    assert re.fullmatch(r"ML-\d{4}-\d{5}", reference)

    [item] = items()
    assert item.reference == reference
    assert item.channel == Channel.WEB
    assert item.message == MESSAGE
    assert item.section.anchor == USE
    assert (item.submitter_name, item.submitter_email, item.submitter_organisation) == (
        "Awa Traoré",
        "awa@example.org",
        "Réseau des journalistes",
    )
    assert item.wants_resolution_notice is True
    assert item.language == "en"
    assert item.submitter_ip == "127.0.0.1"
    assert item.form_nonce
    assert not item.is_quarantined, item.spam_reasons
    assert [(a.original_filename, a.content_type) for a in item.attachments] == [
        ("report.pdf", "application/pdf"),
        ("photo.png", "image/png"),
    ]
    assert all(a.storage_key and a.size > 0 for a in item.attachments)
    assert EventKind.ROUTED in [event.kind for event in item.events]
    [ack] = db.session.scalars(sa.select(OutboxMessage)).all()
    assert (ack.kind, ack.recipient) == ("feedback.acknowledgement", "awa@example.org")
    assert reference in ack.subject


def test_thank_you_page_shows_only_the_reference_and_forgets_the_draft(client, mali):
    response = send(client, name="Private Name", email="private@example.org")
    html = thanks_page(client, response)
    assert "Private Name" not in html
    assert "private@example.org" not in html
    assert MESSAGE not in html
    assert 'data-clear-draft="desk-feedback-draft:mali/cluster-munition-ban-policy"' in html
    page = client.get(response.headers["Location"])
    assert "no-store" in page.headers["Cache-Control"]


def test_thank_you_page_cannot_be_reached_by_guessing_a_reference(client, mali):
    html = thanks_page(client, send(client))
    reference = reference_on(html)
    for ref in (reference, "ML-2026-00001", "x.y.z"):
        page = client.get(f"{FORM}/thanks?ref={ref}")
        assert page.status_code == 410
        assert reference not in page.get_data(as_text=True)
    assert client.get(f"{FORM}/thanks").status_code == 410


def test_thank_you_link_expires(client, mali, monkeypatch):
    location = send(client).headers["Location"]
    monkeypatch.setattr("desk.feedback.views.THANKS_MAX_AGE", -1)
    assert client.get(location).status_code == 410


def test_feedback_without_a_section_or_files_is_about_the_whole_profile(client, mali):
    thanks_page(client, send(client))
    [item] = items()
    assert item.section is None
    assert item.attachments == []


# --------------------------------------------------------------------------- French


def test_french_browser_gets_the_french_form_and_a_french_acknowledgement(client, mali):
    french = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
    form = client.get(FORM, headers=french).get_data(as_text=True)
    assert '<html lang="fr">' in form
    assert '<label for="message">Votre commentaire</label>' in form
    assert "Le profil dans son ensemble" in form
    assert "Il ne sera ni publié ni mis en ligne." in form

    response = send(client, headers=french, email="awa@example.org", section=USE)
    html = thanks_page(client, response, headers=french)
    assert "Merci pour votre commentaire" in html
    [item] = items()
    assert item.language == "fr"
    [ack] = db.session.scalars(sa.select(OutboxMessage)).all()
    assert ack.subject == f"Nous avons bien reçu votre commentaire [{item.reference}]"
    assert f"Votre numéro de référence est {item.reference}." in ack.text
    assert "Votre commentaire est transmis aux rédacteurs de ce profil." in ack.html


def test_language_switch_chooses_french_or_english_whatever_the_browser(client, mali):
    english = client.get(f"{FORM}?section={USE}").get_data(as_text=True)
    assert f'href="{FORM}?lang=fr&amp;section={USE}" lang="fr" hreflang="fr">Français' in english

    french = client.get(f"{FORM}?lang=fr", headers={"Accept-Language": "en"})
    html = french.get_data(as_text=True)
    assert "Envoyer un commentaire sur ce profil" in html
    assert f'action="{FORM}?lang=fr"' in html
    assert f'href="{FORM}?lang=en" lang="en" hreflang="en">English' in html

    response = send(client, f"{FORM}?lang=fr", email="awa@example.org")
    assert "lang=fr" in response.headers["Location"]
    assert "Merci pour votre commentaire" in thanks_page(client, response)
    assert items()[0].language == "fr"


def test_form_of_a_french_profile_is_in_french(client, create_profile):
    create_profile("SN", "Politique d'interdiction", language="fr")
    html = client.get(
        "/profiles/senegal/politique-d-interdiction/feedback", headers={"Accept-Language": "en"}
    ).get_data(as_text=True)
    assert "Envoyer un commentaire sur ce profil" in html


def test_french_errors_are_in_french(client, mali):
    response = send(client, f"{FORM}?lang=fr", message="", notify="y")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Veuillez écrire votre commentaire." in html
    assert "Indiquez votre adresse e-mail" in html


#: Every file with words of the form, its pages, the profile's links and the acknowledgement.
FORM_WORDS = [
    ("python", "desk/feedback/forms.py"),
    ("python", "desk/feedback/views.py"),
    ("python", "desk/core/locale.py"),
    ("jinja2", "templates/feedback/_fields.html"),
    ("jinja2", "templates/feedback/form.html"),
    ("jinja2", "templates/feedback/thanks.html"),
    ("jinja2", "templates/errors/413.html"),
    ("jinja2", "templates/errors/429.html"),
    ("jinja2", "templates/profiles/detail.html"),
    ("jinja2", "templates/emails/feedback_acknowledgement.txt"),
    ("jinja2", "templates/emails/feedback_acknowledgement.html"),
    ("jinja2", "templates/errors/storage.html"),
    ("jinja2", "templates/errors/unavailable.html"),
    ("jinja2", "templates/profiles/_what_changed.html"),
    ("python", "desk/inbox/operations.py"),
    *(
        ("jinja2", f"templates/emails/{name}.{kind}")
        for name in ("feedback_reply", "feedback_closed", "feedback_resolved")
        for kind in ("txt", "html")
    ),
]


def test_every_word_of_the_form_and_its_emails_has_a_french_translation():
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
    from babel.messages.pofile import read_po

    from desk import PROJECT_ROOT
    from desk.core.locale import SOURCE_DIRECTORY

    with (SOURCE_DIRECTORY / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        french = {message.id: message for message in read_po(handle) if message.id}
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    used = {
        message
        for method, path in FORM_WORDS
        for _, message, _, _ in extract_from_file(method, PROJECT_ROOT / path, keywords)
    }
    assert len(used) > 60
    untranslated = sorted(m for m in used if m not in french or not french[m].string)
    assert untranslated == []
    assert [m for m in used if french[m].fuzzy] == []


def test_catalogues_compile_once_until_they_change(tmp_path):
    from desk.core.locale import SOURCE_DIRECTORY

    source = tmp_path / "source"
    po = source / "fr" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_bytes((SOURCE_DIRECTORY / "fr" / "LC_MESSAGES" / "messages.po").read_bytes())
    target = tmp_path / "compiled"
    mo = target / "fr" / "LC_MESSAGES" / "messages.mo"

    assert compile_catalogues(source, target) == [mo]
    assert compile_catalogues(source, target) == []
    po.write_text(po.read_text() + '\nmsgid "Extra"\nmsgstr "En plus"\n')
    assert compile_catalogues(source, target) == [mo]
    assert b"En plus" in mo.read_bytes()


# --------------------------------------------------------------------------- the reader's mistakes


def test_message_is_required(client, mali):
    response = send(client, message="  \x00 ")
    assert response.status_code == 422
    assert "Please write your feedback." in response.get_data(as_text=True)
    assert items() == []


def test_message_over_the_limit_is_refused_and_kept(client, mali):
    long_message = "Détail " * 2858  # 20,006 characters
    response = send(client, message=long_message)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Your feedback is 20,005 characters long; the limit is 20,000." in html
    assert long_message.strip() in html
    assert items() == []


def test_line_breaks_count_as_one_character(client, mali):
    lines = "\r\n".join(["x" * 99] * 200)  # 19,999 characters once CRLF is one break
    thanks_page(client, send(client, message=lines))
    assert items()[0].message == lines.replace("\r\n", "\n")


def test_asking_to_be_told_needs_an_email(client, mali):
    response = send(client, notify="y", name="Awa")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Give your email address so that we can tell you when this is resolved" in html
    assert MESSAGE in html
    assert 'value="Awa"' in html


def test_invalid_email_is_refused(client, mali):
    response = send(client, email="not an address")
    assert response.status_code == 422
    assert "This does not look like an email address." in response.get_data(as_text=True)


def test_error_summary_links_to_each_field(client, mali):
    html = send(client, message="", email="nope").get_data(as_text=True)
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert summary
    assert 'href="#message"' in summary.group(0)
    assert 'href="#email"' in summary.group(0)
    assert 'aria-describedby="message-hint message-error"' in html
    assert 'aria-invalid="true"' in html


# --------------------------------------------------------------------------- files


def test_file_over_the_size_limit_is_a_413_that_keeps_the_message(app, client, mali):
    app.config["DESK_UPLOAD_MAX_FILE_BYTES"] = 2048
    response = send(
        client,
        message="My carefully typed message.",
        name="Awa",
        files=(("big.pdf", minimal_pdf() + b"%" * 4096), ("photo.png", tiny_png())),
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "My carefully typed message.</textarea>" in html
    assert "“big.pdf” is too large: each file can be up to 2 KB." in html
    assert "please choose them again" in html
    assert 'value="Awa"' in html
    assert items() == []


def test_files_over_the_submission_limit_together_are_a_413(app, client, mali):
    app.config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"] = 3000
    pdf = minimal_pdf() + b"%" * 1500
    response = send(client, files=(("a.pdf", pdf), ("b.pdf", pdf)))
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "Your files are too large together" in html
    assert MESSAGE in html
    assert items() == []


def test_more_files_than_allowed_are_refused(app, client, mali):
    app.config["DESK_UPLOAD_MAX_FILES"] = 2
    response = send(client, files=tuple((f"p{n}.png", tiny_png()) for n in range(3)))
    assert response.status_code == 422
    assert "Too many files: you can send up to 2 at once." in response.get_data(as_text=True)
    assert items() == []


def test_html_named_pdf_is_refused_naming_the_file_and_its_content(client, mali):
    page = b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>\n"
    response = send(client, files=(("report.pdf", page), ("photo.png", tiny_png())))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = re.search(r'<p class="error" id="attachments-error">(.*?)</p>', html, re.S)
    assert error, "the file field shows no error"
    assert "report.pdf" in error.group(1)
    assert "HTML" in error.group(1)
    assert "photo.png" not in error.group(1)
    assert MESSAGE in html
    assert items() == []


def test_storage_failure_keeps_the_message_and_records_nothing(client, mali, monkeypatch):
    class BrokenStorage:
        def save(self, stream):
            raise StorageError("disk full")

        def delete(self, key):
            pass

    monkeypatch.setattr("desk.feedback.operations.get_storage", BrokenStorage)
    response = send(client, files=(("report.pdf", minimal_pdf()),))
    assert response.status_code == 503
    assert MESSAGE in response.get_data(as_text=True)
    assert items() == []


def test_request_over_the_hard_cap_gets_the_friendly_413_page(app, client, mali):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = send(client, files=(("big.pdf", minimal_pdf() + b"%" * 8192),))
    html = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "What you sent is too large" in html
    assert "each up to 20 MB and 50 MB in total" in html
    assert f'href="{FORM}"' in html
    assert items() == []


def test_text_field_over_the_form_memory_limit_gets_the_friendly_413_page(app, client, mali):
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024
    response = send(client, f"{FORM}?lang=fr", message="x" * 2048)
    assert response.status_code == 413
    assert "Votre envoi est trop volumineux" in response.get_data(as_text=True)


# --------------------------------------------------------------------------- abuse


def test_honeypot_is_quarantined_behind_the_same_thank_you_page(client, mali):
    normal = thanks_page(client, send(client, message="A genuine correction."))
    trapped = thanks_page(client, send(client, message="Buy now.", website="http://spam.example"))
    first, second = items()
    assert not first.is_quarantined
    assert second.is_quarantined
    assert "honeypot" in second.spam_reasons
    assert text_of(trapped).replace(second.reference, "REF") == text_of(normal).replace(
        first.reference, "REF"
    )


def test_form_sent_too_fast_is_quarantined(app, client, mali):
    app.config["DESK_FORM_MIN_SECONDS"] = 60
    html = thanks_page(client, send(client))
    [item] = items()
    assert reference_on(html) == item.reference
    assert item.is_quarantined
    assert "too_fast" in item.spam_reasons


def test_form_redrawn_after_an_error_keeps_its_first_token(client, mali):
    hidden = hidden_fields(client.get(FORM).get_data(as_text=True))
    redrawn = send(client, hidden=hidden, message="").get_data(as_text=True)
    assert hidden_fields(redrawn)["token"] == hidden["token"]
    forged = send(client, hidden={**hidden, "token": "forged"}, message="").get_data(as_text=True)
    assert hidden_fields(forged)["token"] not in ("forged", hidden["token"])


def test_double_submit_makes_one_item_and_the_same_thank_you_page(client, mali):
    hidden = hidden_fields(client.get(FORM).get_data(as_text=True))
    files = (("report.pdf", minimal_pdf()),)
    first = thanks_page(client, send(client, hidden=hidden, files=files))
    second = thanks_page(client, send(client, hidden=hidden, files=files))
    assert reference_on(first) == reference_on(second)
    [item] = items()
    assert len(item.attachments) == 1


def test_rate_limit_answers_429_with_a_friendly_page(app, client, mali):
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "2 per hour"
    for number in range(2):
        assert send(client, message=f"Correction {number}").status_code == 303
    response = send(client, message="A third message, kept private.")
    html = response.get_data(as_text=True)
    assert response.status_code == 429
    assert "Too many attempts" in html
    assert "A third message, kept private." not in html
    assert len(items()) == 2
    assert client.get(FORM).status_code == 200


def test_rate_limit_per_email_holds_across_addresses(app, client, mali):
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "1 per hour"
    first = send(client, email="awa@example.org", message="one")
    assert first.status_code == 303
    other_address = {"REMOTE_ADDR": "198.51.100.7"}
    hidden = hidden_fields(client.get(FORM).get_data(as_text=True))
    response = client.post(
        FORM,
        data={**hidden, "message": "two", "email": "AWA@example.org"},
        environ_base=other_address,
    )
    assert response.status_code == 429


def test_missing_csrf_token_is_a_400_that_keeps_the_message(client, mali):
    hidden = hidden_fields(client.get(FORM).get_data(as_text=True))
    response = send(client, hidden={"token": hidden["token"]}, message="Typed with care.")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form had expired, so nothing was sent." in html
    assert "Typed with care.</textarea>" in html
    assert hidden_fields(html)["csrf_token"]
    assert items() == []
