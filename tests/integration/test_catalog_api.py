"""The deployed catalog read API, called at `retail_catalog_api_url` from cfn-outputs/flat-outputs.json as the
storefront calls it, with the token from the secret an operator made (locally: the deployed task definition
run as a local process, serving TLS with the local CA's certificate), each answer checked against PostgreSQL."""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import boto3
import pytest
import requests

from localdev.outputs import key
from stacks.workloads import catalog_api_secret_names

pytestmark = pytest.mark.workloads("retail")  # the catalog read API is the retail stack's


@pytest.fixture(scope="module")
def api(outputs: dict, local: dict | None) -> dict[str, Any]:
    if key("retail", "catalog_api_url") not in outputs:
        pytest.skip("no catalog read API in this deployment (retail_catalog_api_url)")
    region = outputs[key("retail", "stack_region")]
    suffix = str(outputs[key("retail", "stack_id")]).split("-", 1)[1]
    extra = ({"endpoint_url": local["aws"]["AWS_ENDPOINT_URL"], "aws_access_key_id": local["aws"]["AWS_ACCESS_KEY_ID"],
              "aws_secret_access_key": local["aws"]["AWS_SECRET_ACCESS_KEY"]} if local else {})
    tokens = boto3.client("secretsmanager", region_name=region, **extra).get_secret_value(
        SecretId=catalog_api_secret_names("retail", suffix)["tokens"])["SecretString"]
    return {"url": str(outputs[key("retail", "catalog_api_url")]).rstrip("/"), "token": tokens.split(",")[0].strip(),
            "verify": local["workloads"]["retail"]["ca_file"] if local else True}


def get(api: dict[str, Any], path: str, token: str | None = "", **params: object) -> requests.Response:
    token = api["token"] if token == "" else token
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return requests.get(api["url"] + path, params=params, headers=headers, verify=api["verify"], timeout=30)


def in_postgres(db: Any, skus: list[str]) -> dict[str, tuple]:
    with db.cursor() as cur:
        cur.execute("SELECT p.sku, p.name, p.price, (SELECT COALESCE(sum(quantity), 0) FROM inventory i "
                    "WHERE i.sku = p.sku) FROM products p WHERE p.sku = ANY(%s)", (skus,))
        return {row[0]: (row[1], Decimal(row[2]), int(row[3])) for row in cur.fetchall()}


def known_skus(db: Any, count: int) -> list[str]:
    with db.cursor() as cur:
        cur.execute("SELECT sku FROM products ORDER BY sku LIMIT %s", (count,))
        return [row[0] for row in cur.fetchall()]


def test_the_read_api_is_healthy_over_verified_tls(api: dict[str, Any]) -> None:
    answer = get(api, "/healthz", token=None)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok", "postgres": "ok", "redis": "ok"})


def test_each_product_is_served_as_postgresql_holds_it(api: dict[str, Any], db: Any) -> None:
    skus = known_skus(db, 20)
    if not skus:
        pytest.skip("no products in the catalog yet: run the pipeline first (make demo)")
    truth = in_postgres(db, skus)
    for sku in skus:
        answer = get(api, f"/v1/products/{sku}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["name"], Decimal(body["price"]), body["total_quantity"]) == truth[sku]


def test_a_batch_serves_the_known_and_names_the_unknown(api: dict[str, Any], db: Any) -> None:
    skus = known_skus(db, 5)
    unknown = f"NO-SUCH-{uuid.uuid4().hex[:8]}"
    answer = get(api, "/v1/products", sku=[*skus, unknown])
    assert answer.status_code == 200
    assert sorted(answer.json()["products"]) == sorted(skus) and answer.json()["missing"] == [unknown]


@pytest.mark.parametrize(("path", "token", "status"), [
    ("/v1/products/NO-SUCH-SKU-it", "", 404),
    ("/v1/products/SKU-1", None, 401),
    ("/v1/products/SKU-1", "not-a-token", 401),
    ("/v1/products/bad%20sku!", "", 400),
])
def test_each_refusal_is_named(api: dict[str, Any], path: str, token: str | None, status: int) -> None:
    response = get(api, path, token=token)
    assert response.status_code == status and response.json()["message"]
