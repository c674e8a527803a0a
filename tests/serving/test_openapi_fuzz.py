"""A property-based run against the served OpenAPI spec (schemathesis): no 500, ever."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from lensrec.serving.app import create_app  # noqa: E402
from lensrec.serving.backends import EmbeddedBackend, RedisBackend  # noqa: E402
from lensrec.serving.export import export_redis  # noqa: E402


@pytest.fixture(params=["embedded", "redis"])
def api_schema(request, als_file):
    import lensrec

    if request.param == "embedded":
        backend = EmbeddedBackend(als_file)
    else:
        url = request.getfixturevalue("redis_url")
        export_redis(lensrec.load(als_file), url, k=20)
        backend = RedisBackend(url, model_file=als_file)
    app = create_app(backend, token="t", max_history=100, max_body=4096)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_server_errors(api_schema):
    """Every operation of the spec, with cases generated from it (valid and not)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 6
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call()
            assert response.status_code < 500, (
                case.operation.label,
                response.status_code,
                response.text[:300],
            )

        run()
