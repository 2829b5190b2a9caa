from desk.accounts.models import Role, User
from desk.core.audit import AuditEvent
from desk.extensions import db


def test_create_user_command_makes_an_editor_with_countries(runner):
    result = runner.invoke(
        args=[
            "create-user",
            "Ed@Desk.test",
            "--role",
            "editor",
            "--country",
            "ML",
            "--lead",
            "ml",
            "--password",
            "a long password",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created editor ed@desk.test" in result.output
    user = db.session.scalar(db.select(User).where(User.email == "ed@desk.test"))
    assert user.role == Role.EDITOR
    assert user.check_password("a long password")
    assert not user.check_password("another password")
    assert user.password_hash.startswith("$argon2id$")
    assert [(a.country.code, a.is_lead) for a in user.assignments] == [("ML", True)]
    audit = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "user.created"))
    assert audit.data["after"]["lead"] == ["ML"]


def test_create_user_prints_a_generated_password_that_works(runner):
    result = runner.invoke(args=["create-user", "gen@desk.test", "--role", "manager"])
    assert result.exit_code == 0, result.output
    password = result.output.strip().rsplit(" ", 1)[-1]
    user = db.session.scalar(db.select(User).where(User.email == "gen@desk.test"))
    assert user.check_password(password)


def test_create_user_refuses_duplicates_and_unknown_countries(runner, create_staff):
    create_staff(email="twice@desk.test")
    duplicate = runner.invoke(args=["create-user", "twice@desk.test"])
    assert duplicate.exit_code != 0
    assert "already an account" in duplicate.output
    unknown = runner.invoke(args=["create-user", "new@desk.test", "--country", "QQ"])
    assert unknown.exit_code != 0
    assert "'QQ' is not an ISO 3166-1 alpha-2 country code" in unknown.output
