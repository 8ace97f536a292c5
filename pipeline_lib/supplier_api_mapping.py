"""What the supplier API says and writes, as pure functions: its request model (built from the wire
contract), the Velocity templates that turn a batch into one Kinesis PutRecords call and its answer
back into a reply, and the gateway responses' bodies.

The request body is `{"inventory_updates": [...], "product_upserts": [...]}`: one array per record
type, so the validator names the field that is wrong (a `oneOf` over both types would only say that
no type matched). Each record is the contract's record without `type` and `supplier_id`, which the
API sets: the type from the array, the supplier from the caller's API key. Unknown fields are
refused. Kinesis takes at most 500 records in one call; a batch over 500 in all is refused by
Kinesis as a whole (ValidationException), answered 400.

No `${` or `%{` may appear in a template: Terraform would read them as its own interpolation.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from processor import contract

# The request's arrays: the body's field -> the record type its records get.
BATCH_FIELDS = {"inventory_updates": "inventory_update", "product_upserts": "product_upsert"}
STAMPED = ("type", "supplier_id")  # set by the API, refused in a body
MODEL_NAME = "SupplierBatch"
WAF_RATE_RULE = "per-ip-rate"  # the web ACL's rate-based rule: a client IP over its limit in five minutes is blocked
SUPPLIER_PLACEHOLDER = "SUPPLIER"


def record_model(record_type: str) -> dict[str, Any]:
    """The contract's record as a supplier sends it: no `type`, no `supplier_id`, nothing else."""
    schema = contract.schema(record_type)
    properties = {name: spec for name, spec in schema["properties"].items() if name not in STAMPED}
    return {"type": "object", "title": record_type, "description": schema["description"],
            "required": [name for name in schema["required"] if name not in STAMPED],
            "properties": properties, "additionalProperties": False}


def request_model(max_records: int) -> dict[str, Any]:
    """The request model (draft 4): one array per record type, at least one record, at most `max_records` each."""
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": MODEL_NAME,
        "description": "A supplier's batch: inventory updates and product upserts, at most "
                       f"{max_records} records in all (one Kinesis PutRecords call). The supplier is the API key's.",
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            field: {"type": "array", "minItems": 1, "maxItems": max_records, "items": record_model(record_type)}
            for field, record_type in BATCH_FIELDS.items()
        },
    }


def request_template(stream_name: str, suppliers_by_key_id: Mapping[str, str]) -> str:
    """PutRecords for the batch: each record stamped with its type and the supplier of the key that
    called (the map from key id to supplier is the stack's own, `$context.identity.apiKeyId` the
    caller's), partitioned by SKU. A record's JSON is the body's, untouched but for the stamp put in
    front of its first field: the stamp ends with a comma and takes the place of the record's opening
    brace (`substring(1)`: Java's String, and airspeed-ext's for Python's str). Nothing in the record's
    text is searched for: a name ending in `{` puts `{"` inside the record, whose closing quote follows it."""
    suppliers = ", ".join(f'"{key_id}": "{supplier}"' for key_id, supplier in suppliers_by_key_id.items())
    lines = [
        f"#set($suppliers = {{{suppliers}}})",
        "#set($supplier = $suppliers.get($context.identity.apiKeyId))",
        "#set($first = true)",
        "{",
        f'  "StreamName": "{stream_name}",',
        '  "Records": [',
    ]
    for field, record_type in BATCH_FIELDS.items():
        # the record's opening brace and the stamped fields, then the record's own fields after its brace
        stamp = '{"type":"' + record_type + '","supplier_id":"' + SUPPLIER_PLACEHOLDER + '",'
        lines += [
            f"#set($stampFor = '{stamp}')",
            f"#set($stamp = $stampFor.replace('{SUPPLIER_PLACEHOLDER}', $supplier))",
            "#set($i = 0)",
            f"#foreach($record in $input.path('$.{field}'))",
            f"#set($fields = $input.json(\"$.{field}[$i]\").substring(1))",
            '#if(!$first),#end{"PartitionKey": "$record.sku", '
            '"Data": "$util.base64Encode("$stamp$fields")"}',
            "#set($first = false)",
            "#set($i = $i + 1)",
            "#end",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


# PutRecords' answer, passed on: how many records Kinesis took, and each refused record's index in
# the request (inventory updates first, then product upserts) with Kinesis' reason, so the supplier
# resends just those. The HTTP status stays 200: the call succeeded, some records did not. The message goes in
# as `$input.json` spells it, a JSON string: `$util.escapeJavaScript` turns a `'` into `\'`, which JSON does not have.
ACCEPTED_TEMPLATE = "\n".join([
    "#set($results = $input.path('$.Records'))",
    "#set($failed = $input.path('$.FailedRecordCount'))",
    "#set($accepted = $results.size() - $failed)",
    "#set($i = 0)",
    "#set($first = true)",
    "{",
    '  "request_id": "$context.requestId",',
    '  "accepted": $accepted,',
    '  "failed_record_count": $failed,',
    '  "failed": [',
    "#foreach($result in $results)",
    "#if($result.ErrorCode)",
    '#if(!$first),#end{"index": $i, "error_code": "$result.ErrorCode", '
    '"error_message": $input.json("$.Records[$i].ErrorMessage")}',
    "#set($first = false)",
    "#end",
    "#set($i = $i + 1)",
    "#end",
    "  ]",
    "}",
]) + "\n"

# Kinesis' own refusals (HTTP 400 from Kinesis, which an AWS integration would otherwise pass on as
# 200): a batch too big for one call is the supplier's to fix (400: ValidationException for more than
# 500 records or a record over 1 MiB, InvalidArgumentException for over 5 MiB in all); anything else
# (throttled, the key or the stream unavailable, the integration's role refused) is ours (503: retry).
# Only methods Java's String and Python's str share, and `==`: AWS renders with Velocity, the
# emulator with airspeed.
KINESIS_REFUSED_TEMPLATE = "\n".join([
    "#set($type = $input.path('$.__type'))",
    "#if($type == 'ValidationException' || $type == 'InvalidArgumentException')",
    "#set($context.responseOverride.status = 400)",
    '{"request_id": "$context.requestId", "error": "BATCH_TOO_LARGE", "message": "the batch is more than Kinesis '
    'takes in one call (at most 500 records, 1 MiB each, 5 MiB in all): send it in smaller batches"}',
    "#else",
    '{"request_id": "$context.requestId", "error": "STREAM_REFUSED", "message": "the stream did not take the batch; '
    'nothing was written: retry later"}',
    "#end",
]) + "\n"
KINESIS_FAILED_TEMPLATE = ('{"request_id": "$context.requestId", "error": "STREAM_UNAVAILABLE", "message": "the stream '
                           'is unavailable; nothing was written: retry later"}\n')

# The integration's responses, by Kinesis' HTTP status: (status, selection pattern, template); the
# response without a pattern is the default (Kinesis' 200).
INTEGRATION_RESPONSES: tuple[tuple[str, str | None, str], ...] = (
    ("200", None, ACCEPTED_TEMPLATE),
    ("503", r"4\d{2}", KINESIS_REFUSED_TEMPLATE),
    ("502", r"5\d{2}", KINESIS_FAILED_TEMPLATE),
)
# PutRecords speaks the AWS JSON protocol: the integration request must say so.
INTEGRATION_REQUEST_PARAMETERS = {"integration.request.header.Content-Type": "'application/x-amz-json-1.1'"}


def put_records_uri(partition: str, region: str) -> str:
    """The AWS service integration's action: Kinesis PutRecords in `region`."""
    return f"arn:{partition}:apigateway:{region}:kinesis:action/PutRecords"


# Gateway responses: what API Gateway answers itself, before any integration runs, by response type.
GATEWAY_RESPONSES: dict[str, tuple[int, str]] = {
    "BAD_REQUEST_BODY": (400, "$context.error.validationErrorString"),
    "INVALID_API_KEY": (403, "send a valid API key in the x-api-key header"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "no such route: POST /v1/updates with an x-api-key header"),
    "THROTTLED": (429, "over this key's request rate: slow down and retry"),
    "QUOTA_EXCEEDED": (429, "this key's daily quota is spent"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "send the batch as application/json, uncompressed or with Content-Encoding gzip or deflate"),
    "REQUEST_TOO_LARGE": (413, "the body is over API Gateway's 10 MB"),
    "WAF_FILTERED": (403, "refused by the web application firewall"),
    "DEFAULT_5XX": (500, "the gateway failed; nothing was written: retry later"),
}


def gateway_response_template(message: str) -> str:
    return json.dumps({"request_id": "$context.requestId", "error": "$context.error.responseType",
                       "message": message}) + "\n"
