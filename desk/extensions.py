"""The Flask extensions, created unbound here and bound to the app in ``create_app``."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from huey import Huey
from huey.storage import MemoryStorage

from desk.core.db import Base, Session
from desk.core.mail import DeskMail

db = SQLAlchemy(model_class=Base, session_options={"class_": Session})
mail = DeskMail()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
#: The job queue; its storage (SQLite file or Redis) is chosen from the settings in create_app.
huey = Huey("desk", storage_class=MemoryStorage, results=False, utc=True)
