"""A sensor as a real MQTT client (paho-mqtt): its certificate and key, its client id, its topic,
all from the `device.json` that `python -m tools.sensors register` wrote."""
from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt


@dataclass(frozen=True)
class Endpoint:
    """Where the device connects and whom it trusts: on AWS the endpoint in device.json and the
    system store (Amazon Root CA 1); locally the broker's address and the local CA
    (localdev/local_endpoints.py)."""

    host: str
    port: int
    ca_file: str | None


class Device:
    def __init__(self, folder: Path, endpoint: Endpoint, keepalive_s: int = 30) -> None:
        self.config = json.loads((folder / "device.json").read_text())
        self.folder = folder
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.config["thing_name"],
                                  protocol=mqtt.MQTTv311, clean_session=True)
        key = folder / self.config["private_key"]
        self.client.tls_set(ca_certs=endpoint.ca_file, certfile=str(folder / self.config["certificate"]),
                            keyfile=str(key), cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.endpoint, self.keepalive_s = endpoint, keepalive_s
        self.answered = threading.Event()
        self.refused: str | None = None  # the CONNACK's reason when the broker refused, or why the link closed
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    @property
    def topic(self) -> str:
        return self.config["topic"]

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        self.answered.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.refused = self.refused or f"disconnected: {reason}"
        self.answered.set()
        self.disconnected.set()

    def connect(self, timeout_s: float = 10.0) -> bool:
        """True once the broker admitted the device; False if it refused it (see `refused`)."""
        try:
            self.client.connect(self.endpoint.host, self.endpoint.port, keepalive=self.keepalive_s)
        except (ssl.SSLError, OSError) as error:
            self.refused = f"TLS: {error}"
            return False
        self.client.loop_start()
        if not self.answered.wait(timeout_s):
            raise TimeoutError(f"{self.config['thing_name']}: no CONNACK within {timeout_s} s")
        return self.refused is None

    def publish(self, payload: bytes, *, topic: str | None = None, qos: int = 1, timeout_s: float = 10.0) -> bool:
        """Publish and, for QoS 1, wait for the broker's PUBACK: True if it came."""
        info = self.client.publish(topic or self.topic, payload, qos=qos)
        if qos == 0:
            return info.rc == mqtt.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + timeout_s
        while not info.is_published() and not self.disconnected.is_set() and time.monotonic() < deadline:
            try:
                info.wait_for_publish(0.05)
            except (RuntimeError, ValueError):  # the connection closed before the PUBACK
                return False
        return info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
