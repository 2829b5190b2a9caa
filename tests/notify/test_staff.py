import sqlalchemy as sa

from desk.accounts.models import NotificationMode, Role
from desk.extensions import db
from desk.feedback.models import Channel
from desk.feedback.operations import Submission, receive_feedback
from desk.notify.models import OutboxMessage
from desk.notify.staff import notify_user


def test_staff_are_told_at_once_unless_they_chose_the_digest_or_acted_themselves(
    create_staff, create_profile
):
    profile = create_profile("ML")
    feedback = receive_feedback(
        Submission(channel=Channel.WEB, profile=profile, message="Please check note 3.")
    ).feedback
    editor = create_staff(Role.EDITOR, countries=("ML",))
    digest = create_staff(Role.EDITOR, countries=("ML",))
    digest.notification_mode = NotificationMode.DAILY_DIGEST

    def tell(user, key, actor_id=None):
        return notify_user(
            user,
            "feedback.assigned",
            template="feedback_assigned",
            dedupe_key=key,
            actor_id=actor_id,
            feedback=feedback,
            actor=None,
        )

    told = tell(editor, "k1")
    assert told.recipient == editor.email
    assert feedback.reference in told.subject
    assert tell(digest, "k2") is None
    assert tell(editor, "k3", actor_id=editor.id) is None
    total = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    assert total == 1
