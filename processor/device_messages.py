"""A factory device's message, as a sensor publishes it and as the IoT rule puts it on the stream.

A sensor publishes a batch of its readings to its own topic (contract: device_message), leaving out
the line and sensor its topic names; the topic rule (pipeline_lib/iot_ingest.py) wraps the message
as it arrived, base64-encoded, with the line and sensor of the topic IoT let it publish to
(contract: device_record), one stream record per message, keyed by sensor:

    {"line_id": "line-1", "sensor_id": "temp-1-00", "payload": "<base64>", "received_at_ms": 1764756000000}

The processor decodes it in processor/records.py (`DeviceMessage`); this module is what devices,
the local rules engine's tests and the traffic generators build.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Iterable

IDENTITY_FIELDS = ("line_id", "sensor_id")  # named by the topic, not the body


def device_payload(readings: Iterable[dict]) -> bytes:
    """The message a device publishes: its readings, without the line and sensor its topic names."""
    own = [{k: v for k, v in r.items() if k not in IDENTITY_FIELDS} for r in readings]
    return json.dumps({"readings": own}, separators=(",", ":")).encode()


def envelope(line: str, sensor: str, payload: bytes, received_at_ms: int) -> bytes:
    """The record the IoT rule puts on the stream for `payload` (its SQL, pipeline_lib/iot_ingest.py)."""
    return json.dumps({"line_id": line, "sensor_id": sensor, "payload": base64.b64encode(payload).decode(),
                       "received_at_ms": received_at_ms}, separators=(",", ":")).encode()
