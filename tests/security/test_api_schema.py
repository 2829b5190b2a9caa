"""The intake API, fuzzed from its own OpenAPI document: no server errors, answers as documented.

Schemathesis reads ``/api/v1/openapi.json`` from the app and draws requests from it (valid and
invalid ones), calls the app through WSGI and checks each answer: not a 5xx, a documented
status code and content type, headers and a body that match the document. A second pass names
a real profile in every request, so the examples reach the intake itself rather than stopping
at "no such profile". The budget is fixed and the examples derandomised.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from desk.feedback.models import Feedback
from desk.profiles.models import Profile

#: Whether a well-formed submission is accepted depends on what no document can say: which
#: profiles are published, and whether a file's content is of the kind its name claims.
UNKNOWABLE = [schemathesis.checks.positive_data_acceptance]

BUDGET = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api_schema(app: Flask, mali: Profile) -> Any:
    app.config["DESK_CORS_ORIGINS"] = ["https://publisher.example"]
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@BUDGET
def test_the_api_answers_every_request_as_its_document_says(case: Any) -> None:
    case.call_and_validate(excluded_checks=UNKNOWABLE)


@schema.include(operation_id="submitFeedback").parametrize()
@BUDGET
def test_submissions_to_a_real_profile_answer_as_documented(case: Any, mali: Profile) -> None:
    body = case.body if isinstance(case.body, dict) else {}
    body.pop("country", None)
    body.pop("topic", None)
    body["profile"] = f"mali/{mali.topic_slug}"
    case.body = body
    response = case.call_and_validate(excluded_checks=UNKNOWABLE)
    if response.status_code == 201:
        reference = response.json()["reference"]
        assert Feedback.query.filter_by(reference=reference).one().profile_id == mali.id


def test_the_document_describes_every_route_of_the_api(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {
        ("/api/v1" + path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routes = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "feedback_api.openapi"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes == documented
