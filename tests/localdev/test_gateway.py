"""The local API Gateway (localdev/gateway/) serving the supplier API made in the emulator as the
construct declares it (localdev/gateway/supplier_api.py), over HTTPS:
each behaviour asserted on the gateway's real answers and on what the emulated Kinesis holds."""
from __future__ import annotations

import asyncio
import gzip
import json
import os
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from localdev import moto_extensions
from localdev.access import ACCESS_LOG_ENV
from localdev.access.trust import API_GATEWAY
from localdev.gateway.__main__ import build
from localdev.gateway.app import MAX_PAYLOAD_BYTES, create_app, read_body
from localdev.gateway.supplier_api import IntegrationRole, build_supplier_api, make_integration_role
from localdev.servers import MotoServer
from localdev.tls import make_tls
from pipeline_lib.iam import assume_role_policy
from pipeline_lib.settings import Supplier, SupplierApiConfig, UsageTier
from processor.workloads import RETAIL
from tests.helpers import read_stream, served_in_thread

REGION = "us-east-1"
JSON = "application/json"
STAGE = "live"
KEYS = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}


@dataclass
class Api:
    url: str  # https://127.0.0.1:port/live
    ca: Path
    keys: dict[str, str]  # name -> key value
    stream: str
    role: IntegrationRole
    access_log: Path
    aws: Callable[[str], Any]
    endpoint: str  # the emulator
    api_id: str

    def post(self, body: object, key: str | None = "acme", *, raw: bytes | None = None,
             path: str = "/v1/updates") -> requests.Response:
        headers = {"content-type": JSON}
        if key is not None:
            headers["x-api-key"] = self.keys.get(key, key)
        data = raw if raw is not None else json.dumps(body).encode()
        return requests.post(self.url + path, data=data, headers=headers, verify=str(self.ca), timeout=30)

    def records(self) -> list[tuple[str, dict]]:
        """(partition key, record) of every record in the stream, oldest first."""
        return [(r["PartitionKey"], json.loads(r["Data"])) for r in read_stream(self.aws("kinesis"), self.stream)]


def inventory(sku: str = "SKU-1", quantity: object = 5, **extra: object) -> dict:
    return {"event_id": str(uuid.uuid4()), "sku": sku, "quantity": quantity,
            "updated_at": "2026-12-03T09:00:00.000Z", **extra}


def product(sku: str = "SKU-2") -> dict:
    return {"event_id": str(uuid.uuid4()), "sku": sku, "name": "Kettle", "category": "kitchen", "price": "19.99",
            "currency": "USD", "updated_at": "2026-12-03T09:00:00.000Z"}


# The usage tiers the tests need (a roomy one, one of 1 request/s, one of 3 requests a day) and a
# supplier on each; the tier's name is the supplier's.
SETTINGS = SupplierApiConfig(
    tiers=(UsageTier("roomy", 1000.0, 2000), UsageTier("trial", 1.0, 2), UsageTier("quota", 1000.0, 2000, 3)),
    suppliers=(Supplier("acme", "roomy"), Supplier("globex", "roomy"), Supplier("trial", "trial"),
               Supplier("quota", "quota")),
    stage_name=STAGE)


def _make_api(apigateway: Any, stream: str, role_arn: str) -> tuple[str, dict[str, str]]:
    """The supplier API as the construct declares it, with two keys the construct never makes: one
    disabled on the roomy plan, one on no plan."""
    made = build_supplier_api(apigateway, stream_name=stream, role_arn=role_arn, settings=SETTINGS)
    keys = {supplier: value for (supplier, _), value in made.key_values.items()}
    for name in ("disabled", "planless"):
        key = apigateway.create_api_key(name=f"{name}-{stream}", enabled=name != "disabled")
        keys[name] = key["value"]
        if name == "disabled":
            apigateway.create_usage_plan_key(usagePlanId=made.plan_ids["roomy"], keyId=key["id"], keyType="API_KEY")
    return made.api_id, keys


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    directory = tmp_path_factory.mktemp("gateway")
    access_log = directory / "access.jsonl"
    access_log.write_text("")
    previous = os.environ.get(ACCESS_LOG_ENV)
    os.environ[ACCESS_LOG_ENV] = str(access_log)
    moto_extensions.apply_all()
    emulator = MotoServer()

    def aws(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=emulator.url, **KEYS)

    stream = f"updates-{uuid.uuid4().hex[:8]}"
    aws("kinesis").create_stream(StreamName=stream, ShardCount=1)
    stream_arn = aws("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    role = make_integration_role(aws("iam"), stream_arn=stream_arn)
    api_id, keys = _make_api(aws("apigateway"), stream, role.arn)
    tls = make_tls(directory / "tls")
    gateway = build(emulator.url, REGION, api_id, STAGE, str(directory / "gateway.jsonl"))
    with served_in_thread(create_app(gateway), ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key)) as port:
        yield Api(f"https://127.0.0.1:{port}/{STAGE}", tls.ca, keys, stream, role, access_log, aws, emulator.url,
                  api_id)
    emulator.close()
    if previous is None:
        os.environ.pop(ACCESS_LOG_ENV, None)
    else:
        os.environ[ACCESS_LOG_ENV] = previous


def test_a_batch_lands_in_the_stream_stamped_with_the_calling_keys_supplier_and_keyed_by_sku(api: Api) -> None:
    before = len(api.records())
    sent = {"inventory_updates": [inventory("SKU-A1"), inventory("SKU-A2", 0)], "product_upserts": [product("SKU-A3")]}
    answer = api.post(sent, key="globex")
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3 and answer.json()["failed"] == []
    assert answer.json()["request_id"] == answer.headers["x-amzn-requestid"]
    landed = api.records()[before:]
    assert [key for key, _ in landed] == ["SKU-A1", "SKU-A2", "SKU-A3"]
    assert [record for _, record in landed] == [
        {"type": "inventory_update", "supplier_id": "globex", **sent["inventory_updates"][0]},
        {"type": "inventory_update", "supplier_id": "globex", **sent["inventory_updates"][1]},
        {"type": "product_upsert", "supplier_id": "globex", **sent["product_upserts"][0]}]


def test_a_request_without_an_api_key_is_refused_with_403(api: Api) -> None:
    answer = api.post({"inventory_updates": [inventory()]}, key=None)
    assert answer.status_code == 403
    assert answer.json()["error"] == "INVALID_API_KEY"
    assert "x-api-key" in answer.json()["message"]


@pytest.mark.parametrize("key", ["not-a-key-of-this-api", "disabled", "planless"])
def test_an_unknown_disabled_or_planless_key_is_refused_with_403_and_nothing_is_written(api: Api, key: str) -> None:
    before = len(api.records())
    answer = api.post({"inventory_updates": [inventory()]}, key=key)
    assert (answer.status_code, answer.json()["error"]) == (403, "INVALID_API_KEY")
    assert len(api.records()) == before


def test_a_route_the_api_does_not_have_is_refused_with_403(api: Api) -> None:
    answer = api.post({"inventory_updates": [inventory()]}, path="/v1/nothing-here")
    assert (answer.status_code, answer.json()["error"]) == (403, "MISSING_AUTHENTICATION_TOKEN")


def test_a_key_past_its_plans_burst_is_answered_429_until_the_bucket_refills(api: Api) -> None:
    answers = [api.post({"inventory_updates": [inventory()]}, key="trial") for _ in range(8)]
    assert [a.status_code for a in answers[:2]] == [200, 200]  # the burst of 2
    throttled = [a.json() for a in answers if a.status_code == 429]
    assert throttled  # 8 requests at once against 1 a second
    assert {t["error"] for t in throttled} == {"THROTTLED"}
    assert "request rate" in throttled[0]["message"]


def test_a_key_past_its_daily_quota_is_answered_429_quota_exceeded(api: Api) -> None:
    statuses = [api.post({"inventory_updates": [inventory()]}, key="quota").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    answer = api.post({"inventory_updates": [inventory()]}, key="quota")
    assert (answer.status_code, answer.json()["error"]) == (429, "QUOTA_EXCEEDED")
    assert "quota" in answer.json()["message"]


def test_a_record_with_a_wrong_type_is_refused_with_400_naming_the_field_and_nothing_is_written(api: Api) -> None:
    before = len(api.records())
    answer = api.post({"inventory_updates": [inventory(), inventory(quantity="five")]})
    assert (answer.status_code, answer.json()["error"]) == (400, "BAD_REQUEST_BODY")
    assert "/inventory_updates/1/quantity" in answer.json()["message"]
    assert "'integer'" in answer.json()["message"]
    assert len(api.records()) == before


def test_a_body_claiming_a_supplier_is_refused_with_400_naming_supplier_id(api: Api) -> None:
    before = len(api.records())
    answer = api.post({"inventory_updates": [inventory(supplier_id="globex")]}, key="acme")
    assert answer.status_code == 400
    assert "'supplier_id' was unexpected" in answer.json()["message"]
    assert "/inventory_updates/0" in answer.json()["message"]
    assert len(api.records()) == before


def _claims(record: dict, *pairs: str) -> bytes:
    """A batch of `record` whose JSON text ends with `pairs` as written (duplicate or escaped keys survive)."""
    text = json.dumps({"inventory_updates": [record]})
    return (text[:-3] + "".join(", " + pair for pair in pairs) + "}]}").encode()


@pytest.mark.parametrize("raw, named", [
    (_claims(inventory(), '"supplier_id": "globex"', '"supplier_id": "globex"'), "'supplier_id' was unexpected"),
    (_claims(inventory(), '"supplier\\u005fid": "globex"'), "'supplier_id' was unexpected"),
    (_claims(inventory(), '"Supplier_ID": "globex"'), "'Supplier_ID' was unexpected"),
    (_claims(inventory(), '"type": "product_upsert"'), "'type' was unexpected"),
    (json.dumps({"inventory_updates": [inventory()], "supplier_id": "globex"}).encode(), "'supplier_id' was unexpected")],
    ids=["duplicate-key", "escaped-key", "case-variant", "type", "beside-the-arrays"])
def test_a_body_claiming_a_supplier_or_type_in_any_spelling_is_refused_400_with_nothing_written(
        api: Api, raw: bytes, named: str) -> None:
    before = len(read_stream(api.aws("kinesis"), api.stream))
    answer = api.post(None, raw=raw, key="acme")
    assert (answer.status_code, answer.json()["error"]) == (400, "BAD_REQUEST_BODY"), answer.text
    assert named in answer.json()["message"]
    assert len(read_stream(api.aws("kinesis"), api.stream)) == before


def test_an_unknown_field_and_a_missing_one_are_named(api: Api) -> None:
    record = inventory(colour="red")
    del record["updated_at"]
    message = api.post({"inventory_updates": [record]}).json()["message"]
    assert "'colour' was unexpected" in message and "'updated_at' is a required property" in message


def test_a_body_that_is_not_json_is_refused_with_400(api: Api) -> None:
    answer = api.post(None, raw=b'{"inventory_updates": [')
    assert (answer.status_code, answer.json()["error"]) == (400, "BAD_REQUEST_BODY")
    assert "not JSON" in answer.json()["message"]


@pytest.mark.parametrize("raw, why", [
    (b'{"inventory_updates": [{"quantity": 5}', "not JSON (Expecting ',' delimiter at line 1, column 39)"),
    (b"", "not JSON (the body is empty)"),
    (b'\xef\xbb\xbf{"inventory_updates": []}', "not JSON (it starts with a byte-order mark, U+FEFF"),
    (b'{"inventory_updates": [{"quantity": NaN}]}', "not JSON (NaN is not a JSON number)"),
    (b'{"inventory_updates": [{"quantity": -Infinity}]}', "not JSON (-Infinity is not a JSON number)"),
    (b'{"inventory_updates": [{"quantity": -1e400}]}', "the number -1e400 is beyond the range of a double")],
    ids=["cut-short", "empty", "byte-order-mark", "nan", "infinity", "beyond-a-double"])
def test_a_body_that_is_not_json_or_not_readable_is_refused_400_saying_why_and_nothing_is_written(
        api: Api, raw: bytes, why: str) -> None:
    before = len(read_stream(api.aws("kinesis"), api.stream))
    answer = api.post(None, raw=raw)
    assert (answer.status_code, answer.json()["error"]) == (400, "BAD_REQUEST_BODY")
    assert answer.json()["message"].startswith(f"Invalid request body: {why}"), answer.json()["message"]
    assert len(read_stream(api.aws("kinesis"), api.stream)) == before


def test_a_refusal_spells_a_value_as_json_not_as_python(api: Api) -> None:
    message = api.post({"inventory_updates": [None, inventory(quantity=True), inventory(quantity={"n": None})]}).json()[
        "message"]
    assert message == ("[/inventory_updates/0: null is not of type 'object', "
                       "/inventory_updates/1/quantity: true is not of type 'integer', "
                       "/inventory_updates/2/quantity: {\"n\": null} is not of type 'integer']")


def test_a_number_too_long_to_read_is_refused_400_saying_so_not_as_a_body_that_is_not_json(api: Api) -> None:
    before = len(api.records())
    answer = api.post(None, raw=b'{"inventory_updates": [{"quantity": ' + b"9" * 5000 + b"}]}")
    assert answer.status_code == 400
    assert "a number of 5,000 digits" in answer.json()["message"], answer.text
    assert len(api.records()) == before


@pytest.mark.parametrize("record", [inventory(quantity='5"'), inventory(**{'colour"': "red"}),
                                    {**product(), "name": "Kettle\u0000"}], ids=["quote", "quoted-field", "nul"])
def test_a_refusal_naming_a_value_with_a_quote_or_a_control_character_is_still_json(api: Api, record: dict) -> None:
    field = "product_upserts" if "name" in record else "inventory_updates"
    answer = api.post({field: [record]})
    assert answer.status_code == 400
    assert answer.json()["error"] == "BAD_REQUEST_BODY"  # the body parses: the value is escaped, not pasted
    assert answer.json()["message"].startswith(f"[/{field}/0")


def test_a_body_nested_too_deeply_to_parse_is_refused_400_not_failed_500(api: Api) -> None:
    before = len(api.records())
    answer = api.post(None, raw=b'{"inventory_updates": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}")
    assert (answer.status_code, answer.json()["error"]) == (400, "BAD_REQUEST_BODY")
    assert "nested too deeply" in answer.json()["message"]
    assert len(api.records()) == before


def test_a_refusal_names_a_long_value_by_its_size_instead_of_repeating_it(api: Api) -> None:
    too_many = api.post({"inventory_updates": [inventory(f"S{i}") for i in range(501)]}).json()["message"]
    assert too_many == "[/inventory_updates: [... 501 items] is too long]"
    long_text = api.post({"inventory_updates": [inventory(quantity="9" * 100_000)]}).json()["message"]
    assert long_text.startswith("[/inventory_updates/0/quantity: '99999") and len(long_text) < 300
    assert "(100000 characters)" in long_text


def test_a_lookalike_sku_is_named_with_the_character_that_is_not_ascii_spelt_out(api: Api) -> None:
    message = api.post({"inventory_updates": [inventory("SKU-\u0410")]}).json()["message"]
    assert message.startswith("[/inventory_updates/0/sku: 'SKU-\\u0410' does not match")


def test_a_body_that_is_not_utf_8_is_refused_naming_the_field_whose_text_was_lost_and_nothing_is_written(
        api: Api) -> None:
    before = len(api.records())
    latin_1 = json.dumps({"product_upserts": [product()]}).replace("Kettle", "Kettl\u00e9").encode("latin-1")
    answer = api.post(None, raw=latin_1)  # read as UTF-8, the é is lost: a replacement character stands for it
    assert (answer.status_code, answer.json()["error"]) == (400, "BAD_REQUEST_BODY")
    assert answer.json()["message"].startswith("[/product_upserts/0/name: 'Kettl\\ufffd' does not match")
    assert len(api.records()) == before


def test_every_record_the_gateway_puts_on_the_stream_is_one_the_processor_stores_not_a_dead_letter(api: Api) -> None:
    sent = {"inventory_updates": [inventory("a" * 64, 0), inventory("0", 2**31 - 1),
                                  inventory("S.1:_-x", updated_at="2024-02-29T23:59:59.123456789-23:59")],
            "product_upserts": [{**product("P-1"), "name": 'he said {"hi"} \\ caf\u00e9 \U0001F600', "category": "c" * 128},
                                {**product("P-2"), "name": "\u00e9" * 512, "price": "1234567890.1234"}]}
    before = len(api.records())
    answer = api.post(sent)
    assert (answer.status_code, answer.json()["accepted"]) == (200, 5), answer.text
    landed = [record["Data"] for record in read_stream(api.aws("kinesis"), api.stream)[before:]]
    assert [type(RETAIL.decode(data)).__name__ for data in landed] == ["InventoryUpdate"] * 3 + ["ProductUpsert"] * 2


@pytest.mark.parametrize("text", ["Kettle {", "{", "say {\"hi\"} {", "$price #set($x = 1) {", "line\nbreak\\"],
                         ids=["ends-with-brace", "only-a-brace", "quoted-braces", "velocity-syntax", "newline-backslash"])
def test_a_product_whose_text_ends_with_a_brace_or_holds_template_syntax_lands_as_sent_not_dead_lettered(
        api: Api, text: str) -> None:
    sent = {**product("P-BRACE"), "name": text, "category": text}
    before = len(read_stream(api.aws("kinesis"), api.stream))
    answer = api.post({"product_upserts": [sent]})
    assert (answer.status_code, answer.json()["accepted"]) == (200, 1), answer.text
    [data] = [record["Data"] for record in read_stream(api.aws("kinesis"), api.stream)[before:]]
    assert json.loads(data) == {"type": "product_upsert", "supplier_id": "acme", **sent}
    decoded = RETAIL.decode(data)
    assert (type(decoded).__name__, decoded.name, decoded.category) == ("ProductUpsert", text, text)


def test_a_body_of_another_media_type_is_refused_with_415(api: Api) -> None:
    answer = requests.post(api.url + "/v1/updates", data=b"sku=1", verify=str(api.ca), timeout=30,
                           headers={"x-api-key": api.keys["acme"], "content-type": "application/x-www-form-urlencoded"})
    assert (answer.status_code, answer.json()["error"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


def _post_encoded(api: Api, body: bytes, content_encoding: str) -> requests.Response:
    return requests.post(api.url + "/v1/updates", data=body, verify=str(api.ca), timeout=30,
                         headers={"x-api-key": api.keys["acme"], "content-type": JSON,
                                  "content-encoding": content_encoding})


@pytest.mark.parametrize("content_encoding, compress", [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_a_batch_compressed_with_a_coding_api_gateway_decodes_lands_as_sent(
        api: Api, content_encoding: str, compress: Callable[[bytes], bytes]) -> None:
    sent = {"inventory_updates": [inventory("SKU-GZ1"), inventory("SKU-GZ2", 0)]}
    before = len(read_stream(api.aws("kinesis"), api.stream))
    answer = _post_encoded(api, compress(json.dumps(sent).encode()), content_encoding)
    assert (answer.status_code, answer.json()["accepted"]) == (200, 2), answer.text
    assert [record for _, record in api.records()[before:]] == [
        {"type": "inventory_update", "supplier_id": "acme", **record} for record in sent["inventory_updates"]]


@pytest.mark.parametrize("body, content_encoding", [
    (gzip.compress(b"{}"), "br"), (json.dumps({"inventory_updates": [inventory("SKU-PLAIN")]}).encode(), "gzip"),
    (gzip.compress(json.dumps({"inventory_updates": [inventory("SKU-CUT")]}).encode())[:-8], "gzip")],
    ids=["unsupported-coding", "plain-body-claiming-gzip", "truncated-gzip"])
def test_a_body_not_in_a_coding_api_gateway_decodes_is_refused_415_with_nothing_written(
        api: Api, body: bytes, content_encoding: str) -> None:
    before = len(read_stream(api.aws("kinesis"), api.stream))
    answer = _post_encoded(api, body, content_encoding)
    assert (answer.status_code, answer.json()["error"]) == (415, "UNSUPPORTED_MEDIA_TYPE"), answer.text
    assert "Content-Encoding gzip or deflate" in answer.json()["message"]
    assert len(read_stream(api.aws("kinesis"), api.stream)) == before


def test_a_small_body_that_inflates_past_10_mb_is_refused_413_not_inflated_whole(api: Api) -> None:
    bomb = gzip.compress(b'{"inventory_updates": [' + b" " * (MAX_PAYLOAD_BYTES * 10) + b"]}")
    assert len(bomb) < MAX_PAYLOAD_BYTES // 100
    answer = _post_encoded(api, bomb, "gzip")
    assert (answer.status_code, answer.json()["error"]) == (413, "REQUEST_TOO_LARGE"), answer.text


def test_a_body_over_api_gateways_10_mb_is_refused_413_with_nothing_written(api: Api) -> None:
    before = len(api.records())
    record = json.dumps(inventory()).encode()
    body = b'{"inventory_updates": [' + b", ".join([record] * (MAX_PAYLOAD_BYTES // len(record) + 1)) + b"]}"
    answer = api.post(None, raw=body)
    assert (answer.status_code, answer.json()["error"]) == (413, "REQUEST_TOO_LARGE"), answer.text[:200]
    assert len(api.records()) == before


def test_the_gateway_reads_no_more_of_a_body_than_it_needs_to_refuse_it() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:  # a client that would send without end
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 1024 * 1024

    body = asyncio.run(read_body(endless(), limit=5 * 1024 * 1024))
    assert (len(body), pulled) == (5 * 1024 * 1024 + 1, 6)
    assert asyncio.run(read_body(_chunks([b"ab", b"", b"cd"]), limit=4)) == b"abcd"


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_an_array_over_the_models_500_is_refused_by_the_validator_naming_it(api: Api) -> None:
    answer = api.post({"inventory_updates": [inventory(f"S{i}") for i in range(501)]})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("[/inventory_updates: ")
    assert answer.json()["message"].endswith("is too long]")


def test_a_batch_over_500_records_in_all_is_refused_by_kinesis_and_answered_400_with_nothing_written(api: Api) -> None:
    before = len(api.records())
    answer = api.post({"inventory_updates": [inventory(f"S{i}") for i in range(300)],
                       "product_upserts": [product(f"P{i}") for i in range(201)]})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "BATCH_TOO_LARGE"  # named as every other refusal is
    assert "at most 500 records" in answer.json()["message"]
    assert len(api.records()) == before


def test_records_kinesis_throttles_are_listed_by_index_and_only_the_others_land(api: Api) -> None:
    kinesis = api.aws("kinesis")
    # fill nearly all of the shard's second of write bytes (1 MiB) in one call right before the request,
    # so the window holds however slowly a loaded machine answers: 500 records of 2,076 + 4 bytes
    fill = [{"PartitionKey": "fill", "Data": b"{" + b" " * 2074 + b"}"}] * 500
    for _ in range(5):
        before = len(api.records())  # read first: a read takes the time the window needs
        kinesis.put_records(StreamName=api.stream, Records=fill)
        sent = [inventory(f"T{i}") for i in range(100)]
        answer = api.post({"inventory_updates": sent})
        if answer.json().get("failed_record_count"):
            break
    body = answer.json()
    assert answer.status_code == 200
    assert body["failed_record_count"] == len(body["failed"]) > 0
    assert body["accepted"] == 100 - body["failed_record_count"]
    assert {f["error_code"] for f in body["failed"]} == {"ProvisionedThroughputExceededException"}
    failed = {f["index"] for f in body["failed"]}
    landed = [record["sku"] for key, record in api.records()[before:] if key != "fill"]
    assert landed == [r["sku"] for i, r in enumerate(sent) if i not in failed]


def test_the_integration_calls_kinesis_as_its_role_and_a_refusal_is_answered_503(api: Api) -> None:
    assert api.post({"inventory_updates": [inventory()]}).status_code == 200  # a put the role may make, first
    iam = api.aws("iam")
    iam.delete_role_policy(RoleName=api.role.name, PolicyName=api.role.policy_name)
    try:
        before = len(api.records())
        answer = api.post({"inventory_updates": [inventory()]})
    finally:
        iam.put_role_policy(RoleName=api.role.name, PolicyName=api.role.policy_name, PolicyDocument=api.role.policy)
    assert (answer.status_code, answer.json()["error"]) == (503, "STREAM_REFUSED")
    assert "retry later" in answer.json()["message"]
    assert len(api.records()) == before
    decisions = [json.loads(line) for line in api.access_log.read_text().splitlines()]
    refused = [d for d in decisions if d["principal"].endswith("/" + api.role.name) and not d["allowed"]]
    assert [d["action"] for d in refused][-1:] == ["kinesis:PutRecords"]
    made_as_role = [d for d in decisions if d["principal"].endswith("/" + api.role.name) and "assumed_by" not in d]
    assert {d["action"] for d in made_as_role if d["allowed"]} == {"kinesis:PutRecords"}


def test_an_integration_role_requiring_aws_source_account_cannot_be_assumed_so_each_request_is_a_500(
        api: Api) -> None:
    # GIVEN the integration's role trusts API Gateway only with aws:SourceAccount, which it never sends
    iam, account = api.aws("iam"), api.aws("sts").get_caller_identity()["Account"]
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": API_GATEWAY}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}
    iam.update_assume_role_policy(RoleName=api.role.name, PolicyDocument=json.dumps(trust))
    fresh = build(api.endpoint, REGION, api.api_id, STAGE)  # no session of the role yet, as after a deploy
    try:
        with served_in_thread(create_app(fresh)) as port:
            served = replace(api, url=f"http://127.0.0.1:{port}/{STAGE}")
            before = len(api.records())
            # WHEN a supplier sends a batch
            refused = served.post({"inventory_updates": [inventory()]})
            # THEN a 500 (API Gateway's configuration error), nothing on the stream, the refused AssumeRole logged
            assert (refused.status_code, refused.json()["error"]) == (500, "API_CONFIGURATION_ERROR")
            assert len(api.records()) == before
            decisions = [json.loads(line) for line in api.access_log.read_text().splitlines()]
            (last,) = [d for d in decisions if d["action"] == "sts:AssumeRole" and d["principal"] == api.role.arn][-1:]
            assert (last["allowed"], last["assumed_by"]) == (False, API_GATEWAY)
            assert "it requires aws:SourceAccount, which apigateway.amazonaws.com does not send" in last["reason"]
            # WHEN the condition goes (the trust policy pipeline_lib/iam.py builds for API Gateway)
            iam.update_assume_role_policy(RoleName=api.role.name, PolicyDocument=assume_role_policy(API_GATEWAY))
            accepted = served.post({"inventory_updates": [inventory()]})
            # THEN the same gateway assumes the role and the batch lands
            assert accepted.status_code == 200
            assert len(api.records()) == before + 1
    finally:
        iam.update_assume_role_policy(RoleName=api.role.name, PolicyDocument=assume_role_policy(API_GATEWAY))


def test_the_gateway_writes_an_access_log_line_per_request(api: Api) -> None:
    answer = api.post({"inventory_updates": [inventory()]}, key="globex")
    log = Path(str(api.access_log).replace("access.jsonl", "gateway.jsonl"))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    (mine,) = [line for line in lines if line["request_id"] == answer.headers["x-amzn-requestid"]]
    assert mine["status"] == 200 and mine["api_key_id"] and mine["path"] == "/live/v1/updates"

