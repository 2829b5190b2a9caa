"""The intake API: the web form's rules, JSON answers, CORS for listed origins only."""

import re
import time
from io import BytesIO

import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate

from desk.core.storage import get_storage
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Channel, EventKind, Feedback
from desk.feedback.spam import make_form_token
from desk.notify.models import OutboxMessage

URL = "/api/v1/feedback"
MALI = "mali/cluster-munition-ban-policy"
ALLOWED_ORIGIN = "https://monitor.example"
HTML = b"<!DOCTYPE html>\n<html><head><title>Report</title></head><body><p>Hi</p></body></html>\n"


def minimal_pdf(padding: int = 0) -> bytes:
    """A one-page PDF with a correct cross-reference table; ``padding`` adds a comment."""
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    if padding:
        out += b"%" + b"x" * padding + b"\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(bodies) + 1,
        xref,
    )
    return bytes(out)


def aged_token() -> str:
    """A token for a form drawn a minute ago, as a reader's would be."""
    return make_form_token(now=time.time() - 60)


def post(client, files=(), headers=None, environ_base=None, **fields):
    data = {
        "profile": MALI,
        "message": "The ratification date in the second paragraph is wrong.",
        "email": "reader@example.org",
        "token": aged_token(),
        **fields,
    }
    data = {name: value for name, value in data.items() if value is not None}
    data["attachments"] = [(BytesIO(content), name) for name, content in files]
    return client.post(
        URL,
        data=data,
        content_type="multipart/form-data",
        headers=headers,
        environ_base=environ_base or {},
    )


def items() -> list[Feedback]:
    return list(db.session.scalars(sa.select(Feedback).order_by(Feedback.id)))


@pytest.fixture
def mali(create_profile):
    return create_profile("ML", sections=[("Overview", "Text."), ("Stockpiling", "More.")])


def test_feedback_with_a_pdf_is_received_stored_and_routed(client, mali):
    pdf = minimal_pdf()
    response = post(client, files=[("evidence.pdf", pdf)], section="stockpiling", notify="true")
    assert response.status_code == 201
    reference = response.get_json()["reference"]
    assert re.fullmatch(rf"ML-{utcnow().year}-\d{{5}}", reference)
    assert response.get_json() == {"reference": reference, "status": "received"}
    [item] = items()
    assert item.reference == reference
    assert item.channel == Channel.API
    assert item.section.anchor == "stockpiling"
    assert item.wants_resolution_notice is True
    assert not item.is_quarantined
    [attachment] = item.attachments
    assert attachment.original_filename == "evidence.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == len(pdf)
    with get_storage().open(attachment.storage_key) as stored:
        assert stored.read() == pdf
    routed = [event for event in item.events if event.kind == EventKind.ROUTED]
    assert routed and routed[0].data["country"] == "ML"
    assert db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.recipient == "reader@example.org")
    )


def test_country_and_topic_name_the_profile_too(client, mali):
    response = post(client, profile=None, country="mali", topic="cluster-munition-ban-policy")
    assert response.status_code == 201
    assert items()[0].profile_id == mali.id


def test_html_named_pdf_is_refused_naming_the_file(client, mali):
    response = post(client, files=[("report.pdf", HTML)])
    assert response.status_code == 422
    [problem] = response.get_json()["errors"]["attachments"]
    assert "report.pdf" in problem
    assert "HTML" in problem
    assert items() == []


def test_file_over_the_per_file_limit_is_a_413_in_json(app, client, mali):
    app.config["DESK_UPLOAD_MAX_FILE_BYTES"] = 2048
    response = post(client, files=[("big.pdf", minimal_pdf(padding=4096))])
    assert response.status_code == 413
    assert response.is_json
    [problem] = response.get_json()["errors"]["attachments"]
    assert "big.pdf" in problem
    assert items() == []


def test_files_over_the_submission_limit_together_are_a_413(app, client, mali):
    app.config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"] = 3000
    files = [("one.pdf", minimal_pdf(padding=1500)), ("two.pdf", minimal_pdf(padding=1500))]
    response = post(client, files=files)
    assert response.status_code == 413
    assert "together" in response.get_json()["errors"]["attachments"][0]


def test_request_over_the_hard_cap_is_a_413_in_json(app, client, mali):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = post(client, files=[("big.pdf", minimal_pdf(padding=4096))])
    assert response.status_code == 413
    assert response.get_json()["errors"]["request"]


def test_more_files_than_allowed_are_refused(app, client, mali):
    app.config["DESK_UPLOAD_MAX_FILES"] = 1
    response = post(client, files=[("a.pdf", minimal_pdf()), ("b.pdf", minimal_pdf())])
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["attachments"]
    assert items() == []


def test_field_errors_are_listed_by_field(client, mali):
    response = post(client, message="  ", email="not an address", notify="maybe", section="x")
    assert response.status_code == 422
    assert sorted(response.get_json()["errors"]) == ["email", "message", "notify", "section"]
    assert items() == []


def test_without_a_language_the_browsers_is_taken_as_on_the_web_form(client, mali):
    response = client.post(
        URL,
        data={"profile": MALI, "message": "Une erreur de date.", "token": aged_token()},
        headers={"Accept-Language": "fr-FR,fr;q=0.9"},
    )
    assert response.status_code == 201
    assert items()[0].language == "fr"


def test_unknown_language_is_a_422(client, mali):
    response = post(client, language="de")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["language"]


def test_french_reader_gets_the_web_forms_french_words(client, mali):
    response = post(client, message="", language="fr")
    assert response.status_code == 422
    assert response.get_json()["errors"]["message"] == ["Veuillez écrire votre commentaire."]


def test_language_is_kept_for_the_readers_emails(client, mali):
    assert post(client, language="fr", notify="no").status_code == 201
    [item] = items()
    assert item.language == "fr"
    assert item.wants_resolution_notice is False


def test_asking_to_be_told_needs_an_email(client, mali):
    response = post(client, email="", notify="1")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == ["email"]


def test_missing_profile_is_a_422_and_unknown_profile_a_404(client, mali):
    missing = post(client, profile="")
    assert missing.status_code == 422
    assert "profile" in missing.get_json()["errors"]
    both = post(client, country="mali", topic="cluster-munition-ban-policy")
    assert both.status_code == 422
    assert "profile" in both.get_json()["errors"]
    unknown = post(client, profile="atlantis/cluster-munition-ban-policy")
    assert unknown.status_code == 404
    assert unknown.get_json()["errors"]["profile"]
    assert items() == []


def test_unknown_section_is_a_422(client, mali):
    response = post(client, section="no-such-section")
    assert response.status_code == 422
    assert "section" in response.get_json()["errors"]


def test_honeypot_gets_the_same_answer_but_is_quarantined(client, mali):
    clean = post(client, message="A clean message about the stockpile figures.")
    trapped = post(client, message="A message from a robot.", website="http://spam.example")
    assert trapped.status_code == clean.status_code == 201
    assert trapped.get_json().keys() == clean.get_json().keys()
    assert trapped.get_json()["status"] == "received"
    suspect = items()[1]
    assert suspect.reference == trapped.get_json()["reference"]
    assert suspect.is_quarantined
    assert "honeypot" in suspect.spam_reasons
    acknowledged = db.session.scalars(sa.select(OutboxMessage.dedupe_key)).all()
    assert acknowledged == [f"feedback.acknowledgement:{items()[0].reference}"]


def test_missing_token_is_quarantined(client, mali):
    response = post(client, token=None)
    assert response.status_code == 201
    [item] = items()
    assert item.is_quarantined
    assert item.spam_reasons == ["token_missing"]


def test_token_from_the_api_is_accepted_once(app, client, mali):
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    fetched = client.get("/api/v1/form-token")
    assert fetched.status_code == 200
    assert "no-store" in fetched.headers["Cache-Control"]
    token = fetched.get_json()["token"]
    assert post(client, token=token, message="First message.").status_code == 201
    assert post(client, token=token, message="Second message.").status_code == 201
    first, second = items()
    assert not first.is_quarantined
    assert second.is_quarantined
    assert second.spam_reasons == ["token_replayed"]


def test_form_sent_right_after_the_token_is_quarantined(client, mali):
    token = client.get("/api/v1/form-token").get_json()["token"]
    post(client, token=token)
    [item] = items()
    assert item.is_quarantined
    assert item.spam_reasons == ["too_fast"]


def test_repeat_answers_with_the_first_reference(client, mali):
    first = post(client)
    again = post(client)
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert len(items()) == 1


def test_rate_limit_per_address_answers_429_in_json(app, client, mali):
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "2 per hour"
    for number in range(2):
        assert post(client, message=f"Message {number}", email="").status_code == 201
    response = post(client, message="One too many", email="")
    assert response.status_code == 429
    assert response.get_json()["errors"]["request"]
    assert "Retry-After" in response.headers
    assert len(items()) == 2


def test_rate_limit_per_email_holds_across_addresses(app, client, mali):
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "2 per hour"
    for number in range(2):
        address = {"REMOTE_ADDR": f"192.0.2.{number + 1}"}
        assert post(client, message=f"M {number}", environ_base=address).status_code == 201
    response = post(client, message="One too many", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert response.status_code == 429


def test_preflight_from_a_listed_origin_is_answered(app, client):
    app.config["DESK_CORS_ORIGINS"] = [ALLOWED_ORIGIN]
    response = client.options(
        URL,
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", ["https://elsewhere.example", "https://monitor.example.evil"])
def test_preflight_from_another_origin_gets_no_cors_headers(app, client, origin):
    app.config["DESK_CORS_ORIGINS"] = [ALLOWED_ORIGIN]
    response = client.options(
        URL, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert not [name for name, _ in response.headers.items() if name.startswith("Access-Control-")]


def test_answers_to_a_listed_origin_carry_its_name(app, client, mali):
    app.config["DESK_CORS_ORIGINS"] = [ALLOWED_ORIGIN]
    allowed = post(client, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 201
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    refused = post(client, message="Another message.", headers={"Origin": "https://x.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_api_needs_no_csrf_token_but_the_site_still_does(client, mali):
    assert post(client).status_code == 201
    assert client.post("/login", data={"email": "a@b.c", "password": "x"}).status_code == 400


def test_openapi_document_is_valid_and_describes_both_endpoints(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/feedback", "/form-token"}
    post_operation = document["paths"]["/feedback"]["post"]
    assert {"201", "404", "413", "422", "429"} <= set(post_operation["responses"])
    schema = document["components"]["schemas"]["FeedbackSubmission"]
    assert "multipart/form-data" in post_operation["requestBody"]["content"]
    assert {"profile", "message", "attachments", "token", "website"} <= set(schema["properties"])
