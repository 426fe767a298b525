"""Schemathesis over the API's own OpenAPI document, with every check it has: no 5xx, every status
and body as documented, schema-valid requests taken and schema-invalid ones refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, note, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)

from mmnewsrec.serving.api import create_app
from mmnewsrec.serving.predictor import Predictor
from mmnewsrec.serving.records import read_news_records
from mmnewsrec.serving.service import RecommenderService
from mmnewsrec.serving.state import open_store

TOKEN = "fuzz-token"
load_all_checks()
#: Every check schemathesis has (status codes, content types, headers and bodies as documented,
#: valid data taken, invalid data refused, methods, auth, no 5xx), not only the default ones.
ALL_CHECKS = CHECKS.get_all()
#: A body over the documented size limit is refused with 413 (in the document), valid or not: the
#: only status added to what the two data checks expect.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413"]},
            "negative_data_rejection": {"expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]},
        }
    }
)


@pytest.fixture(scope="module")
def api_schema(word_run: Path, tiny_mind: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("fuzz")
    service = RecommenderService(Predictor.load(word_run), open_store(f"sqlite:///{folder / 'state.db'}"))
    service.add_news(read_news_records([tiny_mind / "dev"]))
    app = create_app(service, TOKEN, max_body=256 * 1024)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_operation_answers_as_its_schema_says(api_schema, mode: GenerationMode) -> None:
    """Positive cases (valid by the schema) must be taken; negative ones refused with a 4xx; in both,
    never a 5xx, and every status, header and body as the document says."""
    # The POPROX endpoints have their own fuzz test (tests/serving/test_poprox.py): a request valid by
    # the schema may ask for more recommendations than it has candidates, refused with 422.
    operations = [result.ok() for result in api_schema.exclude(path_regex="^/poprox").get_all_operations()]
    assert len(operations) >= 10
    exercised = 0
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            note(f"{case.method} {case.path}")
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=ALL_CHECKS)

        try:
            run()
            exercised += 1
        except Unsatisfiable:  # nothing to break in a request without parameters or body (GET /healthz)
            assert mode is GenerationMode.NEGATIVE, f"{operation.method} {operation.path}"
    assert exercised >= len(operations) - 2
