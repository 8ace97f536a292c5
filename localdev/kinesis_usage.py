"""What the emulator's Kinesis served and refused, per shard (localdev/moto_extensions/kinesis.py).

`shard_usage(endpoint, stream)` asks the running emulator with its LocaldevShardUsage action:
GetRecords calls, throttled reads, records and bytes read, the most reads served within
one second, records and bytes written, and records refused for the write limit.
"""
from __future__ import annotations

import json
import urllib.request


def shard_usage(endpoint_url: str, stream: str, region: str = "us-east-1") -> dict[str, dict[str, int]]:
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + "/", data=json.dumps({"StreamName": stream}).encode(), method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.LocaldevShardUsage",
                 # moto routes a request by the service in its credential scope; it checks no signature.
                 "Authorization": f"AWS4-HMAC-SHA256 Credential=localdev/20260101/{region}/kinesis/aws4_request, "
                                  "SignedHeaders=host, Signature=0"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        shards = json.loads(answer.read())["Shards"]
    return {s.pop("ShardId"): {k: v for k, v in s.items() if k != "StreamName"} for s in shards}
