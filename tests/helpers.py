"""Small helpers the tests share: readers over synthesized stacks, a stream reader, an app served in a thread."""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from policy.stack_json import Resource, StackJson


def only(stack: StackJson, type_: str) -> Resource:
    found = list(stack.resources(type_))
    assert len(found) == 1, f"expected one {type_} in {stack.stack_id}, found {len(found)}"
    return found[0]


def by_path(stack: StackJson, type_: str, path_suffix: str) -> Resource:
    found = [r for r in stack.resources(type_) if r.path.endswith(path_suffix)]
    assert len(found) == 1, f"expected one {type_} at */{path_suffix}, found {[r.path for r in found]}"
    return found[0]


def policy_statements(resource: Resource) -> list[dict[str, Any]]:
    return json.loads(resource.config["policy"])["Statement"]


def statement(resource: Resource, sid: str) -> dict[str, Any]:
    matches = [s for s in policy_statements(resource) if s.get("Sid") == sid]
    assert matches, f"no statement {sid} in {resource.path}"
    return matches[0]


def paging_alarm_purposes(stack: StackJson, prefix: str = "") -> set[str]:
    """The purposes (`<workload>-<purpose>-<suffix>`) of the alarms that page through the alerts topic,
    those starting with `prefix`; not the scaling policies' own, which act on the service."""
    suffix = stack.stack_id.split("-", 1)[1]
    names = {a.config["alarm_name"] for a in stack.resources("aws_cloudwatch_metric_alarm")
             if not any("aws_appautoscaling_policy" in action for action in a.config["alarm_actions"])}
    purposes = {name.removeprefix(f"{stack.workload}-").removesuffix(f"-{suffix}") for name in names}
    return {p for p in purposes if p.startswith(prefix)}


def ref(resource: Resource, attribute: str) -> str:
    return f"${{{resource.type}.{resource.name}.{attribute}}}"


def skip_unless_available(items: list[pytest.Item], directory: Path, available: bool, reason: str,
                          fixture: str | None = None) -> None:
    """Skip the tests under `directory` (those using `fixture`, when given) when what they need
    is missing. Not under CI=true: there `.ci/run` provides it, so the tests run and the fixture
    fails loudly instead."""
    if available or os.environ.get("CI", "").lower() == "true":
        return
    for item in items:
        if Path(str(item.fspath)).parent == directory and (fixture is None or fixture in item.fixturenames):
            item.add_marker(pytest.mark.skip(reason=reason))


def read_stream(kinesis: Any, stream: str, since: datetime | None = None,
                throttled_for_s: float = 10.0) -> list[dict[str, Any]]:
    """Every record a stream holds (or every record since `since`), oldest first per shard, paged until
    the shard is caught up, read as a polite consumer reads: Kinesis meters reads at 5 a second a shard
    (the emulated stream too), so a throttled read waits and tries again rather than failing a test that
    shares the shard with running processors. A shard that stays throttled for `throttled_for_s` fails."""
    import time

    records: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        start = ({"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": since} if since is not None
                 else {"ShardIteratorType": "TRIM_HORIZON"})
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], **start)["ShardIterator"]
        throttled_since: float | None = None
        while iterator:
            try:
                page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            except kinesis.exceptions.ProvisionedThroughputExceededException:
                throttled_since = throttled_since or time.monotonic()
                if time.monotonic() - throttled_since > throttled_for_s:
                    raise AssertionError(f"stream {stream}, {shard['ShardId']}: every read throttled for "
                                         f"{throttled_for_s:g} s") from None
                time.sleep(0.5)
                continue
            throttled_since = None
            records += page["Records"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
            time.sleep(0.2)  # a shard's 5 reads a second are shared with the processors
    return records


@contextmanager
def served_in_thread(app: Any, **config: Any) -> Iterator[int]:
    """`app` on uvicorn (on 127.0.0.1, a free port; `config`: uvicorn's, TLS included) in a thread of this
    process until the block ends; yields the port once the server has started."""
    import uvicorn

    from localdev.servers import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"uvicorn did not start on port {port} within 20 s")
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
