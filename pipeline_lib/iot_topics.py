"""What a factory sensor is called in IoT Core and where it publishes: one place for the stack's
device policy and rule (pipeline_lib/iot_ingest.py), the provisioning tool (tools/sensors) and the
local broker. Standard library only: the tool starts without the provider bindings."""
from __future__ import annotations

import re

LINE_ATTRIBUTE, SENSOR_ATTRIBUTE = "line_id", "sensor_id"  # thing attributes: the policy and topic read them
TOPIC_FILTER = "factory/+/+/readings"  # factory/<line>/<sensor>/readings
# The levels of TOPIC_FILTER's wildcards, as IoT SQL's topic(n) counts them (1 the first level; on a Basic
# Ingest topic `$aws/rules/<rule>/` is not counted: topic(n) sees the topic without it).
LINE_LEVEL, SENSOR_LEVEL = (n for n, level in enumerate(TOPIC_FILTER.split("/"), 1) if level == "+")
THING_NAME_SEPARATOR = ":"  # between the environment, line and sensor of a thing name
# A line or sensor id a thing name, a thing attribute and one topic level can all hold (and the
# factory wire contract accepts): no MQTT wildcard, no level separator, no ':' (the thing name's own).
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_THING_NAME = 128  # IoT's longest thing name and MQTT client id: both ids together may not fit


def rule_name(workload: str, suffix: str) -> str:
    """The topic rule's name: letters, digits and underscores only (Naming.underscored)."""
    return f"{workload}_readings_{suffix}".replace("-", "_")


def device_topic(rule: str, line: str, sensor: str, *, basic_ingest: bool) -> str:
    """Where the sensor `sensor` of `line` publishes. Basic Ingest (`$aws/rules/<rule>/...`) goes
    straight to the rule: no messaging charge, no subscriber can read it."""
    topic = TOPIC_FILTER.replace("+", line, 1).replace("+", sensor, 1)
    return f"$aws/rules/{rule}/{topic}" if basic_ingest else topic


def thing_name(workload: str, suffix: str, line: str, sensor: str) -> str:
    """A sensor's thing name and MQTT client id: its environment, line and sensor, unique in the
    account and region (two suffixes' sensors never collide)."""
    for label, value in (("line", line), ("sensor", sensor)):
        if not DEVICE_ID.fullmatch(value):
            raise ValueError(f"{label} id {value!r} must be 1-64 letters, digits, '_' or '-', starting with a letter "
                             "or digit")
    name = THING_NAME_SEPARATOR.join(_thing_name_parts(workload, suffix, line, sensor))
    if len(name) > MAX_THING_NAME:
        raise ValueError(f"thing name {name} is {len(name)} characters (IoT allows {MAX_THING_NAME} for a thing name "
                         "and a client id): shorten the line or sensor id")
    return name


def _thing_name_parts(workload: str, suffix: str, line: str, sensor: str) -> tuple[str, str, str]:
    return f"{workload}-{suffix}", line, sensor


def topic_thing_name_sql(workload: str, suffix: str) -> str:
    """IoT SQL for the thing name of the sensor a message's topic names (its line and sensor levels),
    `concat('factory-dev:', topic(2), ':', topic(3))`: what the MQTT client id of its sender must be."""
    levels = {"\x00line": f"topic({LINE_LEVEL})", "\x00sensor": f"topic({SENSOR_LEVEL})"}
    name = THING_NAME_SEPARATOR.join(_thing_name_parts(workload, suffix, *levels))
    parts = []
    for piece in re.split(f"({'|'.join(levels)})", name):
        if piece in levels:
            parts.append(levels[piece])
        elif "'" in piece:
            raise ValueError(f"{piece!r} cannot be an IoT SQL string literal")
        elif piece:
            parts.append(f"'{piece}'")
    return f"concat({', '.join(parts)})"
