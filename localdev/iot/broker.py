"""`python -m localdev.iot.broker`: an MQTT broker that admits exactly what IoT Core would.

amqtt (a Python MQTT 3.1.1 broker) with mutual TLS: a client must present a certificate of the
local IoT CA (the one that signs CreateCertificateFromCsr, localdev/moto_extensions/iot.py). An
auth plugin (amqtt's extension point for CONNECT) asks the emulator's registry and evaluates the
attached policies (authority.py); the protocol handler does the same for every PUBLISH, before
it is acknowledged (with the RETAIN flag, `iot:RetainPublish` too), and applies IoT Core's limits: a
payload over 128 KB, QoS 2, or a publish the policy refuses closes the connection, as IoT does for
MQTT 3.1.1; past 100 publishes a second a connection, a publish is throttled (dropped, never
acknowledged). Each SUBSCRIBE filter is evaluated as `iot:Subscribe` on `topicfilter/<filter>` and
refused (SUBACK 0x80) unless allowed. One connection per client id: a second one admitted closes the
first, and one refused leaves it alone. Every few seconds, a connection whose certificate is no longer
ACTIVE is closed, as IoT Core does within minutes of a certificate being revoked or deactivated. Accepted messages go to the rules
engine (rules.py): Basic Ingest topics (`$aws/rules/<rule>/...`) straight to their rule, others to
every rule whose filter matches, and to subscribers.

Figures (connections admitted and refused, publishes by outcome, the rules engine's puts and
errors) go to `--stats` every second and at exit, for the demo's summary and the benchmark. The
same events go, as IoT Core's own CloudWatch metrics (namespace AWS/IoT: Connect.* and PublishIn.*
by Protocol, the rules' TopicMatch, ParseError, Success and Failure), into the emulator's CloudWatch
every second, where the stack's IoT alarms watch them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import time
from collections import Counter
from pathlib import Path
from typing import Any

import amqtt.broker
import boto3
from amqtt.broker import Broker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from localdev.iot.authority import Authority, Connection, Refused, Unauthenticated
from localdev.iot.rules import RulesEngine

PUBLISHES_PER_SECOND = 100  # AWS IoT Core: publish requests per second per connection
CERTIFICATE_CHECK_S = 5.0  # AWS closes a connection "within a few minutes" of its certificate leaving ACTIVE
IOT_METRICS = "AWS/IoT"
MQTT = (("Protocol", "MQTT"),)
logger = logging.getLogger("localdev.iot.broker")


class State:
    """What every part of the broker shares: the registry's authority, the rules engine, the figures."""

    authority: Authority
    rules: RulesEngine
    max_message_bytes: int  # IoT Core's, pipeline_lib.settings.IOT_MAX_MESSAGE_BYTES (given, so that the
    # broker starts without importing the stacks' libraries and their JavaScript runtime)
    counts: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    metrics: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()  # IoT's, by (name, dimensions)
    sent: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()  # what CloudWatch has of them
    live: dict[str, BrokerProtocolHandler] = {}  # the admitted connection of each client id

    @classmethod
    def refuse(cls, what: str, reason: str, metric: str) -> None:
        cls.counts[f"{what} refused"] += 1
        cls.refusals[f"{what}: {reason.split(' not allowed:')[0]}"] += 1
        cls.metrics[(metric, MQTT)] += 1

    @classmethod
    def figures(cls) -> dict[str, Any]:
        return {"counts": dict(cls.counts), "refusals": dict(cls.refusals), "rules": cls.rules.figures.as_dict(),
                "at": time.time()}


class IotAuthPlugin(BaseAuthPlugin):
    """CONNECT: the certificate registered, ACTIVE, attached to the thing the client id names, and
    `iot:Connect` allowed by its policies."""

    async def authenticate(self, *, session: Session) -> bool | None:
        der = session.ssl_object.getpeercert(binary_form=True) if session.ssl_object else None
        try:
            connection = await asyncio.to_thread(State.authority.connect, der, session.client_id or "")
        except Refused as refused:
            # IoT Core's two steps, two metrics: the certificate (authentication), then the policy's iot:Connect
            State.refuse("connect", str(refused),
                         "Connection.AuthNError" if isinstance(refused, Unauthenticated) else "Connect.AuthError")
            return False
        session.iot_connection = connection  # type: ignore[attr-defined]
        session.iot_publishes = []  # type: ignore[attr-defined]
        State.counts["connect admitted"] += 1
        State.metrics[("Connect.Success", MQTT)] += 1
        return True


class IotProtocolHandler(BrokerProtocolHandler):
    """PUBLISH: IoT's limits and the policy, decided before the message is acknowledged."""

    async def handle_publish(self, publish_packet: Any) -> None:
        session = self.session
        connection: Connection | None = getattr(session, "iot_connection", None)
        topic, data, qos = publish_packet.topic_name, publish_packet.data or b"", publish_packet.qos
        reason, metric = None, "PublishIn.ClientError"
        if connection is None:
            reason, metric = "not connected", "PublishIn.AuthError"
        elif qos == 2:
            reason = "QoS 2 (IoT Core supports QoS 0 and 1)"
        elif len(data) > State.max_message_bytes:
            reason = f"payload of {len(data)} bytes (IoT Core allows {State.max_message_bytes})"
        else:
            checks = [(State.authority.publish, "PublishIn.AuthError")]
            if publish_packet.retain_flag:  # IoT's own metric for a retained publish it refuses
                checks.append((State.authority.retain_publish, "PublishRetained.AuthError"))
            for check, refused_metric in checks:
                try:
                    await asyncio.to_thread(check, connection, topic)
                except Refused as refused:
                    reason, metric = str(refused), refused_metric
                    break
        if reason is not None:
            State.refuse("publish", reason, metric)
            if self.writer is not None:
                await self.writer.close()  # IoT closes an MQTT 3.1.1 connection that publishes what it may not
            return
        now = time.monotonic()
        recent = [t for t in session.iot_publishes if now - t < 1.0]  # type: ignore[union-attr]
        if len(recent) >= PUBLISHES_PER_SECOND:
            State.counts["publish throttled"] += 1
            State.metrics[("PublishIn.Throttle", MQTT)] += 1
            session.iot_publishes = recent  # type: ignore[union-attr]
            return  # dropped, not acknowledged: a QoS 1 client sends it again
        session.iot_publishes = [*recent, now]  # type: ignore[union-attr]
        State.counts["publish accepted"] += 1
        State.metrics[("PublishIn.Success", MQTT)] += 1
        await super().handle_publish(publish_packet)

    async def start(self) -> None:
        """An admitted connection: one with the same client id closes (IoT Core keeps one connection per
        client id, and closes the existing one only for a client it admitted)."""
        await super().start()
        self.iot_admitted_at = time.monotonic()
        client_id = self.session.client_id if self.session else None
        if client_id is None or getattr(self.session, "iot_connection", None) is None:
            return
        previous = State.live.get(client_id)
        State.live[client_id] = self
        if previous is not None and previous is not self and previous.writer is not None:
            State.counts["connection taken over"] += 1
            await previous.writer.close()

    async def stop(self) -> None:
        client_id = self.session.client_id if self.session else None
        if client_id is not None and State.live.get(client_id) is self:
            del State.live[client_id]
        await super().stop()


class IotBroker(Broker):
    """amqtt with the certificate required, and messages routed to IoT's rules engine."""

    @staticmethod
    def _create_ssl_context(listener: Any) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(listener["cafile"]))
        context.load_cert_chain(str(listener["certfile"]), str(listener["keyfile"]))
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no connection
        return context

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        """SUBSCRIBE: `iot:Subscribe` on `topicfilter/<filter>` evaluated as a publish is; a filter the
        policy does not allow is refused (SUBACK 0x80)."""
        connection: Connection | None = getattr(session, "iot_connection", None)
        try:
            if connection is None:
                raise Refused("not connected")
            await asyncio.to_thread(State.authority.subscribe, connection, subscription[0])
        except Refused as refused:
            State.refuse("subscribe", str(refused), "Subscribe.AuthError")
            return 0x80
        State.counts["subscribe accepted"] += 1
        State.metrics[("Subscribe.Success", MQTT)] += 1
        return await super().add_subscription(subscription, session)

    async def _handle_message_delivery(self, client_session: Session, handler: Any, wait_deliver: Any) -> bool:
        message = wait_deliver.result()
        if message is None or not message.topic:
            return True
        connection: Connection | None = getattr(client_session, "iot_connection", None)
        principal = connection.certificate_arn.rsplit("/", 1)[-1] if connection else ""
        futures = State.rules.submit(message.topic, bytes(message.data), client_session.client_id or "", principal)
        State.counts["messages to rules"] += bool(futures)
        if not message.topic.startswith("$"):  # Basic Ingest never reaches subscribers
            await self._broadcast_message(client_session, message.topic, message.data)
        return True


# amqtt makes each connection's handler from this name (BrokerProtocolHandler.init_from_connect).
amqtt.broker.BrokerProtocolHandler = IotProtocolHandler  # type: ignore[misc]


def config(port: int, cafile: str, certfile: str, keyfile: str) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "ssl": True, "cafile": cafile,
                                  "certfile": certfile, "keyfile": keyfile}},
        "plugins": {"localdev.iot.broker.IotAuthPlugin": {}},
    }


def write_figures(path: Path) -> None:
    """The figures, replaced whole: a reader never sees a file half written."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(State.figures()))
    os.replace(partial, path)


def send_metrics(cloudwatch: Any, broker: Counter[tuple[str, tuple[tuple[str, str], ...]]]) -> None:
    """What happened since the last call (`broker`: a copy of the broker's counts, taken on its
    event loop), as IoT Core's metrics in CloudWatch; a failed send is logged and sent with the next."""
    with State.rules.figures.lock:
        rules = Counter(State.rules.figures.metrics)
    current = broker + rules
    due = {key: count - State.sent[key] for key, count in current.items() if count > State.sent[key]}
    if not due:
        return
    data = [{"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
             "Value": float(count), "Unit": "Count"} for (name, dimensions), count in due.items()]
    try:
        for start in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=IOT_METRICS, MetricData=data[start:start + 1000])
    except Exception:  # the emulator may be going away: the figures file still has every count
        logger.warning("could not send IoT metrics to CloudWatch", exc_info=True)
        return
    State.sent.update(due)


def active_certificates(iot: Any) -> set[str]:
    """The ids of the account's certificates that are ACTIVE now."""
    active: set[str] = set()
    for page in iot.get_paginator("list_certificates").paginate():
        active |= {c["certificateId"] for c in page["certificates"] if c["status"] == "ACTIVE"}
    return active


async def close_inactive(active: set[str], listed_at: float) -> None:
    """Close each connection admitted before `listed_at` whose certificate is no longer ACTIVE (revoked,
    deactivated or deleted since), as IoT Core does: it may not connect again either."""
    for handler in list(State.live.values()):
        connection: Connection | None = getattr(handler.session, "iot_connection", None)
        admitted_at = getattr(handler, "iot_admitted_at", listed_at)
        if connection is None or admitted_at >= listed_at or handler.writer is None:
            continue
        if connection.certificate_arn.rsplit("/", 1)[-1] not in active:
            State.counts["connection closed: certificate not ACTIVE"] += 1
            await handler.writer.close()


async def serve(args: argparse.Namespace) -> None:
    def client(service: str, credentials: dict[str, str] | None = None) -> Any:
        keys = credentials or {"aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "localdev"),
                               "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "localdev")}
        return boto3.client(service, region_name=args.region, endpoint_url=args.emulator, **keys)

    account = client("sts").get_caller_identity()["Account"]
    State.authority = Authority(client("iot"), args.region, account)
    State.max_message_bytes = args.max_message_bytes
    State.rules = RulesEngine(client)
    State.rules.load()
    broker = IotBroker(config(args.port, args.client_ca, args.cert, args.key))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stats = Path(args.stats)
    cloudwatch = client("cloudwatch")
    checked_at = time.monotonic()
    while not stop.is_set():
        write_figures(stats)
        await asyncio.to_thread(send_metrics, cloudwatch, State.metrics.copy())
        if time.monotonic() - checked_at >= CERTIFICATE_CHECK_S:
            checked_at = time.monotonic()
            await close_inactive(await asyncio.to_thread(active_certificates, State.authority.iot), checked_at)
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass
    await broker.shutdown()
    State.rules.close()
    write_figures(stats)
    send_metrics(cloudwatch, State.metrics.copy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--emulator", required=True, help="the emulator's URL (its IoT registry, STS, Kinesis, logs)")
    parser.add_argument("--region", required=True)
    parser.add_argument("--client-ca", required=True, help="the CA device certificates must chain to")
    parser.add_argument("--cert", required=True, help="the broker's server certificate")
    parser.add_argument("--key", required=True)
    parser.add_argument("--stats", required=True, help="where the figures go (JSON)")
    parser.add_argument("--max-message-bytes", type=int, required=True, help="IoT Core's limit on a PUBLISH payload")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
