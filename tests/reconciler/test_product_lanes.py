"""A product lane as resolved from its Product: defaults that come from the product."""

from __future__ import annotations

from desired_state.document import Document
from desired_state.product import ProductSpec
from reconciler.kinds.product.lanes import lanes_of_product
from tests.support.product_documents import product_spec


def test_health_checks_default_to_the_products_health_path() -> None:
    spec = product_spec(runtime={"port": 8080, "healthPath": "/ready"})
    spec["lanes"][0]["domains"] = [{"host": "t.example.com"}]
    spec["lanes"][0]["healthChecks"] = [{}, {"path": "/live", "expectStatus": 204}]
    document = Document.model_validate(
        {
            "apiVersion": "setpoint.dev/v1",
            "kind": "Product",
            "metadata": {"name": "shop"},
            "spec": ProductSpec.model_validate(spec),
        }
    )
    testing = lanes_of_product(document, generation=1)[0]
    assert [(c.url, c.expect_status) for c in testing.health_checks] == [
        ("https://t.example.com/ready", 200),
        ("https://t.example.com/live", 204),
    ]
