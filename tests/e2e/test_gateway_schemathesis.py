"""schemathesis against the live gateway's /openapi.json: no 5xx, no answer outside the document.

Every documented operation gets a bounded number of generated requests
(GATEWAY_FUZZ_EXAMPLES, default 15, valid and invalid data) sent with a
customer's token. Each answer must not be a 5xx and must conform to the
document: status code, content type, headers and body schema; invalid data
must be rejected with a 4xx.

Generated SKUs almost never name a real product, so the forms that name a product
by SKU are also sent once with a real one, and their answers must be 2xx and conform.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.test_gateway import GATEWAY, call, gateway_up, login  # noqa: F401  (gateway_up: autouse)

EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="session")
def api_schema() -> Any:
    return schemathesis.openapi.from_url(f"{GATEWAY}/openapi.json")


@pytest.fixture(scope="session")
def fuzz_token(rpc: Any) -> str:
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    rpc.customers.register({"name": "Fuzzer", "email": email, "password": "correct-horse-9"})
    return login(email, "correct-horse-9")


@pytest.fixture(scope="session")
def session() -> requests.Session:
    return requests.Session()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_gateway_honours_its_openapi_document(mode: GenerationMode, api_schema: Any, fuzz_token: str,
                                                  session: requests.Session) -> None:
    # driven through schemathesis' Python API: its pytest lazy-schema plugin does not run on pytest 9
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 29  # every route but /openapi.json, which schemathesis leaves out
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            # a negative case may leave out the Authorization header on purpose: then send none
            dropped_auth = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
            headers = {} if dropped_auth else {"Authorization": f"Bearer {fuzz_token}"}
            case.call_and_validate(base_url=GATEWAY, session=session, checks=CHECKS, headers=headers,
                                   timeout=30)

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to make invalid (no parameters, no body): the positive run covers it
        except BaseException as exc:  # hypothesis raises an exception group
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label}: {exc}")
    assert not failures, f"{len(failures)} operation(s) failed:\n\n" + "\n\n".join(failures)


def test_the_sku_forms_answer_as_documented(api_schema: Any, fuzz_token: str, session: requests.Session,
                                            new_product: Any) -> None:
    sku = new_product(stock=10)["sku"]
    by_sku = {"product_id_or_sku": sku}
    stock, cart_line = "/api/inventory/{product_id_or_sku}", "/api/cart/items/{product_id_or_sku}"
    json_body = "application/json"
    orders = api_schema["/api/orders"]["POST"]
    cases = [
        api_schema[stock]["GET"].Case(path_parameters=by_sku),
        orders.Case(body={"items": [{"sku": sku, "quantity": 1}]}, media_type=json_body),
        orders.Case(body={"sku": sku, "quantity": 1}, media_type=json_body),
        api_schema["/api/cart/items"]["POST"].Case(body={"sku": sku, "quantity": 2}, media_type=json_body),
        api_schema[cart_line]["PUT"].Case(path_parameters=by_sku, body={"quantity": 1}, media_type=json_body),
        api_schema[cart_line]["DELETE"].Case(path_parameters=by_sku),
    ]
    for case in cases:
        response = case.call_and_validate(base_url=GATEWAY, session=session, checks=CHECKS, timeout=30,
                                          headers={"Authorization": f"Bearer {fuzz_token}"})
        assert 200 <= response.status_code < 300, (case.operation.label, response.status_code, response.text)
