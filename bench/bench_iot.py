"""`make bench-ingest-iot`: sensor readings through the local IoT path into PostgreSQL, one reading a
message against the chosen batch (IotConfig.readings_per_message, 10).

For each size, a fresh stand-up of the factory's IoT path as synthesized (localdev/iot/stand_up.py:
the emulator in its own process with its metered Kinesis, a 2-shard stream with the stack's key,
the device policy, the topic rule and its roles; the broker in its own process, admitting each
device and evaluating each publish; its rules engine putting each message into Kinesis as the
rule's role), `SENSORS` devices registered with `tools.sensors register` and connected as paho
clients with their own certificates (mutual TLS, QoS 1, Basic Ingest topics), the processor
reading the stream into a fresh PostgreSQL database and Redis, then two phases:

  * burst: `BURST_READINGS` readings published as fast as IoT Core lets a device publish (each
    device paced under its 100 publishes a second); readings/s = readings / (the last record's
    arrival in Kinesis - the first publish): what the broker and rules engine carry into the stream.
  * steady, at each of `STEADY_RATES` readings a second (a light load both sizes carry, and the
    factory's stated peak: 500 sensors, one reading a second each) for `STEADY_SECONDS`; latency of
    each message = the commit of the batch that stored it - the device's publish, p50 and p99 over
    every reading. This is from publish: a batching device also holds a reading until its message
    is full (at most IotConfig.batch_wait_s).

Prints the figures per size, and the batch's over one reading's; the load average as it started.
"""
from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import end_to_end
from bench.bench_processor import fresh_db
from localdev.iot.device import Device
from localdev.iot.stand_up import IotPath, stand_up
from localdev.moto_extensions.iot import IOT_CA_ENV
from localdev.servers import PostgresServer, RedisServer, wait_for
from localdev.tls import make_ca
from main import build_app
from policy.stack_json import load_app
from processor.device_messages import device_payload
from processor.metrics import LatencyHistogram
from processor.samples import reading
from processor.scheduler import Scheduler
from processor.workloads import WORKLOADS
from tools.sensors import Environment, register

ACCOUNT, REGION = "123456789012", "eu-west-1"  # moto's account; the factory stack's region
SENSORS = int(os.environ.get("BENCH_IOT_SENSORS", "30"))
BURST_READINGS = int(os.environ.get("BENCH_IOT_BURST", "6000"))
STEADY_RATES = [float(r) for r in os.environ.get("BENCH_IOT_RATES", "50,500").split(",")]
STEADY_SECONDS = float(os.environ.get("BENCH_IOT_SECONDS", "10"))
PER_DEVICE_PER_S = 60  # under IoT Core's 100 publishes a second a connection, with room for jitter
SIZES = (1, 10)
LINE = "line-1"


class CommitTimes(LatencyHistogram):
    """The processor's record-to-commit histogram, also keeping, per device message (by its first
    reading's event id), when it was committed, and when each record arrived in Kinesis."""

    def __init__(self) -> None:
        super().__init__()
        self.committed: dict[str, float] = {}
        self.last_arrival = 0.0

    def add(self, records: Iterable[Mapping[str, Any]], committed_at: float) -> float | None:
        records = list(records)
        for record in records:
            body = json.loads(base64.b64decode(json.loads(record["Data"])["payload"]))
            self.committed[body["readings"][0]["event_id"]] = committed_at
            self.last_arrival = max(self.last_arrival, record["ApproximateArrivalTimestamp"].timestamp())
        return super().add(records, committed_at)


@dataclass
class Phase:
    readings: int
    messages: int
    first_publish: float
    published: dict[str, float]  # first event id -> when the device published it (wall clock)


def publish(devices: list[Device], per_message: int, readings: int, rate: float | None, start_at: float) -> Phase:
    """`readings` readings in messages of `per_message`, round robin over the devices, at `rate`
    readings a second (None: as fast as each device may), QoS 1; back when every PUBACK came."""
    messages = readings // per_message
    rate_of_messages = min(rate / per_message if rate else float("inf"), PER_DEVICE_PER_S * len(devices))
    published: dict[str, float] = {}
    in_flight = []
    started = time.monotonic()
    first = time.time()
    for index in range(messages):
        device = devices[index % len(devices)]
        batch = [reading(device.config["sensor_id"], 70.0 + index % 7 / 10, at=start_at + index, line=LINE)
                 for _ in range(per_message)]
        ahead = index / rate_of_messages - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
        published[batch[0]["event_id"]] = time.time()
        in_flight.append(device.client.publish(device.topic, device_payload(batch), qos=1))
    for info in in_flight:
        info.wait_for_publish(60)
        if not info.is_published():
            raise RuntimeError("a publish was not acknowledged within 60 s (throttled by the broker?)")
    return Phase(messages * per_message, messages, first, published)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(per_message: int, factory: Any, pg: PostgresServer, rs: RedisServer, root: Path) -> dict[str, Any]:
    make_ca(root / "iot-ca", "bench IoT CA")
    os.environ[IOT_CA_ENV] = str(root / "iot-ca")  # the emulator (a child process) signs device CSRs with it
    emulator = end_to_end.Emulator(cpus=os.sched_getaffinity(0))
    path: IotPath | None = None
    devices: list[Device] = []
    try:
        path = stand_up(factory, emulator.url, root, account=ACCOUNT, region=REGION, iot_ca=root / "iot-ca")
        env = Environment(suffix="dev", readings_per_message=per_message, batch_wait_s=10.0, basic_ingest=True)
        for n in range(SENSORS):
            config = register(path.aws["iot"], env, LINE, f"temp-{n:03d}", path.devices, say=lambda _: None)
            devices.append(Device(path.devices / config.thing_name.replace(":", "_"), path.endpoint))
        refused = [d.refused for d in devices if not d.connect()]
        if refused:
            raise RuntimeError(f"the broker refused devices: {refused[:3]}")
        database = f"iot_bench_{per_message}_{os.getpid()}"
        conn = fresh_db(pg, database)
        WORKLOADS["factory"].migrate(conn)
        conn.close()
        settings = replace(end_to_end._settings("factory", path.stream, pg, database, rs), region=REGION)
        processor = Scheduler(settings, kinesis=path.aws["kinesis"])
        processor.metrics.stream = open(os.devnull, "w")
        processor.latency = times = CommitTimes()
        runner = threading.Thread(target=processor.run, daemon=True)
        runner.start()

        burst = publish(devices, per_message, BURST_READINGS, None, 0)
        wait_for(lambda: all(e in times.committed for e in burst.published), 600, "the burst's commits")
        into_kinesis = burst.readings / (times.last_arrival - burst.first_publish)
        steady, next_at = [], burst.messages  # each message a second after the last: every phase in the past
        for rate in STEADY_RATES:
            phase = publish(devices, per_message, int(rate * STEADY_SECONDS), rate, next_at)
            next_at += phase.messages
            achieved = phase.readings / (time.time() - phase.first_publish)
            wait_for(lambda: all(e in times.committed for e in phase.published), 600, "the steady phase's commits")  # noqa: B023
            latencies = [(times.committed[e] - at) * 1000 for e, at in phase.published.items()]
            steady.append({"rate": rate, "achieved": achieved, "p50_ms": quantile(latencies, 0.5),
                           "p99_ms": quantile(latencies, 0.99)})
        processor.stop.set()
        runner.join(30)
        for device in devices:
            device.close()
        figures = path.close()
        return {"readings_per_message": per_message, "burst_readings": burst.readings,
                "burst_messages": burst.messages, "into_kinesis_readings_per_s": into_kinesis, "steady": steady,
                "records_stored": processor.stats.records, "broker": figures}
    finally:
        for device in devices:
            device.client.loop_stop()
        if path is not None:
            path.close()
        emulator.close()


def main() -> int:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")  # the emulator's; the rules engine acts as the rule's role
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
          f"{SENSORS} devices, burst {BURST_READINGS} readings, steady {STEADY_RATES} readings/s "
          f"for {STEADY_SECONDS:.0f} s each", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-iot-") as tmp:
        outdir = Path(tmp) / "synth"
        build_app(outdir=str(outdir), suffix="dev", alert_subscriptions="", incident_subscriptions="",
                  state_bucket="").synth()
        (factory,) = [s for s in load_app(outdir) if s.stack_id == "factory-dev"]
        pg, rs = PostgresServer(), RedisServer(password="bench")
        try:
            for size in SIZES:
                result = measure(size, factory, pg, rs, Path(tmp) / f"size-{size}")
                results[size] = result
                broker = result["broker"]
                print(f"{size:>2} reading(s) a message: {result['into_kinesis_readings_per_s']:,.0f} readings/s "
                      f"into Kinesis ({result['burst_readings']:,} readings in {result['burst_messages']:,} messages); "
                      f"broker {json.dumps(broker.get('counts', {}))}, rules {json.dumps(broker.get('rules', {}))}",
                      flush=True)
                for phase in result["steady"]:
                    print(f"   offered {phase['rate']:,.0f} readings/s (achieved {phase['achieved']:,.0f}): "
                          f"publish-to-commit p50 {phase['p50_ms']:,.0f} ms, p99 {phase['p99_ms']:,.0f} ms", flush=True)
        finally:
            pg.close()
            rs.close()
    one, batch = results[SIZES[0]], results[SIZES[-1]]
    print(f"batch of {SIZES[-1]} vs 1: {batch['into_kinesis_readings_per_s'] / one['into_kinesis_readings_per_s']:.1f}x "
          f"the readings/s into Kinesis, {batch['burst_messages'] / one['burst_messages']:.2f}x the messages and "
          f"stream records for the same readings")
    for single, batched in zip(one["steady"], batch["steady"], strict=True):
        print(f"   at {single['rate']:,.0f} readings/s: p50 {batched['p50_ms'] / single['p50_ms']:.3f}x, "
              f"p99 {batched['p99_ms'] / single['p99_ms']:.3f}x")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
