"""Alarms and graphs read metrics that someone publishes (registered with policy/rules.py).

AWS's metrics are held to policy/published_metrics.py (the name, the dimension set, each dimension
value's attribute, and the feature a set needs); the stack's own metrics to what publishes them: a
log metric filter of the stack (by its dimensions), or the processor, whose EMF lines declare no
dimensions, in the namespace its task definitions give it. (The processor's metric names are
processor/metrics.py EMITTED, below this package: tests/unit/test_monitoring.py holds the alarms to them.)
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy.published_metrics import (
    CONTAINER_INSIGHTS,
    DETAILED_API_METRICS,
    DIMENSION_VALUES,
    EMF_DIMENSION_SETS,
    FEATURE_GATED,
    MEMBER_CLUSTER_DIGITS,
    PUBLISHED,
    SHARD_LEVEL_METRICS,
    Dims,
)
from policy.rules import Finding, _alarm_metrics, _finding, rule
from policy.stack_json import Resource, StackJson

_REFERENCE = re.compile(r"^\$\{(aws_[a-z0-9_]+)\.([^.}]+)\.([a-z_]+)\}(.*)$")
# The environment variable that tells the processor's tasks their namespace (processor/config.py).
NAMESPACE_VARIABLE = "METRICS_NAMESPACE"


def _watched(stack: StackJson) -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """(where, namespace, metric, dimensions) of every metric an alarm or a dashboard graph reads."""
    for alarm in stack.resources("aws_cloudwatch_metric_alarm"):
        for metric in _alarm_metrics(alarm.config):
            yield (alarm.path, str(metric.get("namespace")), str(metric.get("metric_name")),
                   dict(metric.get("dimensions") or {}))
    for dashboard in stack.resources("aws_cloudwatch_dashboard"):
        for widget in json.loads(dashboard.config.get("dashboard_body") or "{}").get("widgets", []):
            properties = widget.get("properties") or {}
            previous: list[Any] = []
            for row in properties.get("metrics") or []:
                parts = _shorthand_resolved([part for part in row if not isinstance(part, dict)], previous)
                if len(parts) < 2:  # an expression row ([{"expression": ...}]) reads no metric of its own
                    continue
                previous = parts
                namespace, metric, *rest = parts
                yield (f"{dashboard.path} ({properties.get('title')!r})", str(namespace), str(metric),
                       dict(zip(rest[0::2], rest[1::2], strict=True)))


def _shorthand_resolved(parts: list[Any], previous: list[Any]) -> list[Any]:
    """A dashboard row as CloudWatch reads it: "." repeats the previous row's value at that place, and
    "..." the previous row's values from there on."""
    resolved: list[Any] = []
    for place, part in enumerate(parts):
        if part == "...":
            return resolved + previous[place:] + parts[place + 1:]
        resolved.append(previous[place] if part == "." and place < len(previous) else part)
    return resolved


def _emf_namespaces(stack: StackJson) -> set[str]:
    found = set()
    for task in stack.resources("aws_ecs_task_definition"):
        for container in json.loads(task.config.get("container_definitions") or "[]"):
            found |= {e["value"] for e in container.get("environment", []) if e.get("name") == NAMESPACE_VARIABLE}
    return found


def _filtered(stack: StackJson) -> dict[tuple[str, str], Dims]:
    """What the stack's log metric filters publish, and by which dimensions."""
    published = {}
    for res in stack.resources("aws_cloudwatch_log_metric_filter"):
        for transformation in _blocks(res.config.get("metric_transformation")):
            published[(transformation.get("namespace"), transformation.get("name"))] = frozenset(
                transformation.get("dimensions") or {})
    return published


def _blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block as the synthesized JSON has it: one object, or a list of them."""
    return [value] if isinstance(value, dict) else list(value or [])


def _named(stack: StackJson, type_: str, value: str, attribute: str) -> Resource | None:
    """The resource of `type_` a dimension value names: by reference, or by its literal name."""
    found = stack.by_reference(value)
    if found is not None and found.type == type_:
        return found
    return next((r for r in stack.resources(type_) if r.config.get(attribute) == value), None)


def _feature_is_on(stack: StackJson, feature: str, metric: str, dims: Mapping[str, str]) -> bool:
    if feature == SHARD_LEVEL_METRICS:
        stream = _named(stack, "aws_kinesis_stream", dims.get("StreamName", ""), "name")
        return stream is not None and metric in (stream.config.get("shard_level_metrics") or [])
    if feature == CONTAINER_INSIGHTS:
        cluster = _named(stack, "aws_ecs_cluster", dims.get("ClusterName", ""), "name")
        settings = {s.get("name"): s.get("value") for s in _blocks(cluster.config.get("setting"))} if cluster else {}
        return settings.get("containerInsights") in ("enabled", "enhanced")
    if feature == DETAILED_API_METRICS:
        return any(res.config.get("stage_name") == dims.get("Stage") and any(
            s.get("metrics_enabled") is True for s in _blocks(res.config.get("settings")))
            for res in stack.resources("aws_api_gateway_method_settings"))
    raise ValueError(f"no check for the feature {feature!r}")


def _value_problem(stack: StackJson, dimension: str, value: str) -> str | None:
    """Why a dimension's value cannot be what AWS publishes under, when it reads a resource's attribute."""
    match = _REFERENCE.match(str(value))
    if match is None:
        return None
    type_, name, attribute, rest = match.groups()
    expected = DIMENSION_VALUES.get(dimension, {}).get(type_)
    if expected is None:
        return None
    if attribute != expected:
        return f"{dimension} reads {type_}'s {attribute}; AWS publishes it under the {expected}"
    if type_ == "aws_elasticache_replication_group":
        members = int((stack.document["resource"][type_].get(name) or {}).get("num_cache_clusters") or 0)
        number = rest.removeprefix("-")
        if not (rest.startswith("-") and len(number) == MEMBER_CLUSTER_DIGITS and number.isdigit()
                and 1 <= int(number) <= members):
            return (f"CacheClusterId {value!r} is no member of the replication group: ElastiCache publishes per "
                    f"node, as <group id>-001 to -{members:03d}")
    elif rest:
        return f"{dimension} {value!r} is the {expected} with {rest!r} added"
    return None


def _problem(stack: StackJson, namespace: str, metric: str, dims: dict[str, str], emf: set[str],
             filtered: dict[tuple[str, str], Dims]) -> str | None:
    keys = frozenset(dims)
    if (namespace, metric) in filtered:
        sets: tuple[Dims, ...] = (filtered[(namespace, metric)],)
    elif namespace in emf:
        sets = EMF_DIMENSION_SETS
    elif namespace in PUBLISHED:
        if metric not in PUBLISHED[namespace]:
            return (f"{namespace} {metric}: not a metric policy/published_metrics.py knows AWS to publish "
                    "(add it there with its documented dimension sets)")
        sets = PUBLISHED[namespace][metric]
    else:
        return (f"{namespace} {metric}: nothing publishes into {namespace} (no AWS namespace of "
                "policy/published_metrics.py, no log metric filter, not the processor's)")
    if keys not in sets:
        return (f"{namespace} {metric} by {sorted(keys)}: published only by "
                f"{' or '.join(str(sorted(s)) for s in sets)}")
    feature = FEATURE_GATED.get((namespace, keys)) or FEATURE_GATED.get((namespace, None))
    if feature is not None and not _feature_is_on(stack, feature, metric, dims):
        return f"{namespace} {metric} by {sorted(keys)} exists only with {feature}, which is off"
    return next((p for d, v in sorted(dims.items()) if (p := _value_problem(stack, d, v))), None)


@rule
def alarms_watch_published_metrics(stack: StackJson) -> Iterator[Finding]:
    """Every metric an alarm or a dashboard graph reads is published, by exactly the dimensions it
    names, with the values AWS gives them: an alarm on a metric nobody publishes never fires."""
    emf, filtered = _emf_namespaces(stack), _filtered(stack)
    for where, namespace, metric, dims in _watched(stack):
        problem = _problem(stack, namespace, metric, dims, emf, filtered)
        if problem is not None:
            yield _finding("alarms_watch_published_metrics", stack, where, problem)
    # PutMetricAlarm, Unit: with a unit other than the metric's the alarm "can get stuck in the
    # INSUFFICIENT DATA state"; without one it reads the metric whatever its unit.
    for alarm in stack.resources("aws_cloudwatch_metric_alarm"):
        units = [alarm.config.get("unit"), *(q.get("metric", {}).get("unit") for q in alarm.config.get("metric_query") or [])]
        for unit in filter(None, units):
            yield _finding("alarms_watch_published_metrics", stack, alarm.path,
                           f"names the unit {unit!r}: one the metric is not published with matches no data; leave it out")
