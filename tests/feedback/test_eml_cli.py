"""``desk import-eml FILE…``: saved emails through the same path as the LMTP receiver."""

from __future__ import annotations

import sqlalchemy as sa

from desk.extensions import db
from desk.feedback.models import EventKind, Feedback
from desk.feedback.operations import acknowledgement_message_id
from tests.feedback.emails import EXE, INTAKE, as_bytes, french_report, message, reply


def items() -> list[Feedback]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Feedback).order_by(Feedback.id)))


def test_import_prints_a_reference_per_file_and_recognises_what_it_has_seen(app, runner, tmp_path):
    app.config["DESK_INTAKE_ADDRESS"] = INTAKE
    report = tmp_path / "report.eml"
    report.write_bytes(french_report())
    other = tmp_path / "other.eml"
    other.write_bytes(
        as_bytes(
            message(
                subject="[SN] figures",
                message_id="<other@x>",
                attachments=(("tool.exe", EXE, "application/octet-stream"),),
            )
        )
    )

    result = runner.invoke(args=["import-eml", str(report), str(other)])
    assert result.exit_code == 0, result.output
    mali, senegal = items()
    assert f"{report}: {mali.reference}\n" in result.output
    assert f"{other}: {senegal.reference}\n" in result.output
    assert "  file not accepted: “tool.exe”" in result.output
    assert mali.reference.startswith("ML-") and senegal.reference.startswith("SN-")

    answer = tmp_path / "reply.eml"
    answer.write_bytes(reply(in_reply_to=acknowledgement_message_id(mali)))
    result = runner.invoke(args=["import-eml", str(report), str(answer)])
    assert result.exit_code == 0, result.output
    assert f"{report}: already imported ({mali.reference})" in result.output
    assert f"{answer}: reply to {mali.reference}" in result.output
    assert len(items()) == 2
    assert EventKind.REPLY_RECEIVED in [e.kind for e in items()[0].events]


def test_failures_are_named_and_make_a_non_zero_exit(app, runner, tmp_path):
    good = tmp_path / "good.eml"
    good.write_bytes(as_bytes(message(message_id="<good@x>")))
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.eml"
    result = runner.invoke(args=["import-eml", str(empty), str(missing), str(good)])
    assert result.exit_code == 1
    assert f"{empty}: failed: not an email (the message is empty)" in result.output
    assert f"{missing}: failed: No such file or directory" in result.output
    assert "2 of 3 files failed." in result.output
    [feedback] = items()
    assert f"{good}: {feedback.reference}" in result.output


def test_dash_reads_one_email_from_standard_input(app, runner):
    result = runner.invoke(args=["import-eml", "-"], input=as_bytes(message(subject="[ML] x")))
    assert result.exit_code == 0, result.output
    [feedback] = items()
    assert result.output == f"-: {feedback.reference}\n"
