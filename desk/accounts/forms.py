from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from desk.core.text import strip_nul


class LoginForm(FlaskForm):
    # NUL bytes out before the address is looked up: PostgreSQL refuses them in a query.
    email = EmailField("Email", filters=[strip_nul], validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=500)])
    remember = BooleanField("Keep me logged in on this device")
    next = HiddenField()
