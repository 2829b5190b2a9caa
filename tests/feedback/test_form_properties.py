"""Whatever a reader (or a bot) types into the form's text fields, the answer is never a 5xx."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FORM = "/profiles/mali/cluster-munition-ban-policy/feedback"
TEXT_FIELDS = ("message", "section", "name", "email", "organisation", "notify", "website", "token")
HIDDEN = re.compile(r'name="(csrf_token|token)" type="hidden" value="([^"]*)"')
MEGABYTE = 1024 * 1024


def _repeated(unit: str) -> str:
    """About a megabyte (in characters) of the same few characters."""
    return (unit * (MEGABYTE // len(unit) + 1))[:MEGABYTE]


field_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("\x00 \r\n\t"), max_size=20),
    st.text(min_size=1, max_size=8).map(_repeated),
    st.sampled_from(["\x00" * 1000, "a@b.example\x00", "y", "commitment", "é" * 25_000]),
)


@pytest.fixture
def mali(app, create_profile):
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "100000 per hour"
    return create_profile("ML", sections=[("Commitment", "Mali signed.")])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.fixed_dictionaries({}, optional=dict.fromkeys(TEXT_FIELDS, field_text)))
def test_no_text_in_any_field_gives_a_server_error(client, mali, values):
    page = client.get(FORM).get_data(as_text=True)
    data = {**dict(HIDDEN.findall(page)), **values}
    response = client.post(FORM, data=data, content_type="multipart/form-data")
    assert response.status_code < 500, (sorted(values), response.status_code)
    assert response.status_code in {303, 413, 422}
