"""schemathesis against the gateway's own /openapi.json: generated requests (valid and invalid) never
get a 5xx, and every response conforms to the schema (documented status, content type, body)."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 60
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_generated_requests_get_documented_answers(gateway: str, api_key: str) -> None:
    schema = schemathesis.openapi.from_url(f"{gateway}/openapi.json")
    loaded = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in loaded), "the gateway's OpenAPI document is invalid"
    operations = [result.ok() for result in loaded if isinstance(result, Ok)]
    assert {op.label for op in operations} >= {"POST /jobs", "GET /jobs/{job_id}"}
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    for operation in operations:
        cases = st.one_of(*[operation.as_strategy(generation_mode=mode) for mode in modes])

        @given(case=cases, with_key=st.booleans())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,  # the same cases on every run
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case[Any], with_key: bool) -> None:
            headers = {"x-api-key": api_key} if with_key else {}
            case.call_and_validate(base_url=gateway, headers=headers, checks=CHECKS)

        check()
    # nothing the fuzzing did took the gateway down
    assert httpx.get(f"{gateway}/health").status_code == 200
