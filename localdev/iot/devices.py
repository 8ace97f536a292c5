"""`python -m localdev.iot.devices`: the demo's factory sensors as real MQTT clients.

    python -m localdev.iot.devices .local/devices --host 127.0.0.1 --port 8883 --ca .local/tls/ca.pem \\
        --rate 300 --duration 20 --anomalies 0.003 --poison 0.003 --seed 11 --labels labels.json

Each folder under the first argument is a sensor `python -m tools.sensors register` made (its
device.json, certificate and key). Every device connects with its own certificate and client id
(paho-mqtt, mutual TLS) and publishes its readings, `readings_per_message` at a time (or fewer once
`batch_wait_s` has passed), QoS 1, to its own topic. The readings are the factory traffic
`python -m processor.produce factory` sends (processor/traffic.py, same flags, same seed): a
reading goes to the device its sensor id names; a poison record is published as a message of its own
by one of the devices (it reaches the processor and is dead-lettered, as on AWS). The summary line
on stdout has produce's fields, plus the messages published and acknowledged.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

from localdev.iot.device import Device, Endpoint
from processor.device_messages import device_payload
from processor.traffic import Faults, Labels
from processor.workloads import workload


class Sender:
    """One device's readings, batched as its device.json says, published without waiting for each
    PUBACK (paho keeps them in flight); `flush` sends what is left."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.per_message = int(device.config["readings_per_message"])
        self.wait_s = float(device.config["batch_wait_s"])
        self.pending: list[dict] = []
        self.oldest = 0.0
        self.in_flight: list = []

    def add(self, reading: dict) -> int:
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append(reading)
        if len(self.pending) >= self.per_message or time.monotonic() - self.oldest >= self.wait_s:
            return self.flush()
        return 0

    def flush(self) -> int:
        if not self.pending:
            return 0
        self.send(device_payload(self.pending))
        self.pending = []
        return 1

    def send(self, payload: bytes) -> None:
        self.in_flight.append(self.device.client.publish(self.device.topic, payload, qos=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.iot.devices", description=__doc__.split("\n\n")[0])
    parser.add_argument("devices", type=Path, help="the folders tools.sensors register wrote")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", help="the CA the broker's certificate chains to")
    parser.add_argument("--rate", type=float, default=300.0, help="readings per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds to send for")
    for name in ("duplicates", "reorder", "poison", "anomalies"):
        parser.add_argument(f"--{name}", type=float, default=0.0, metavar="SHARE")
    parser.add_argument("--sensors", type=int, help="how many sensors the traffic names: as many as are registered")
    parser.add_argument("--step", type=float, default=0.001, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", metavar="FILE")
    args = parser.parse_args(argv)

    endpoint = Endpoint(args.host, args.port, args.ca)
    devices = [Device(folder, endpoint) for folder in sorted(p.parent for p in args.devices.glob("*/device.json"))]
    if not devices:
        parser.error(f"no registered devices in {args.devices} (python -m tools.sensors register)")
    if args.sensors is not None and args.sensors != len(devices):
        parser.error(f"--sensors {args.sensors}, but {len(devices)} devices are registered in {args.devices}")
    refused = [f"{d.config['thing_name']}: {d.refused}" for d in devices if not d.connect()]
    if refused:
        print("devices: the broker refused " + "; ".join(refused), file=sys.stderr)
        return 2
    senders = {d.config["sensor_id"]: Sender(d) for d in devices}
    ordered = list(senders.values())
    labels = Labels()
    sent = messages = 0
    count = int(args.rate * args.duration)
    started = time.monotonic()
    faults = Faults(args.duplicates, args.reorder, args.poison, args.anomalies)
    for key, payload in workload("factory").generate(count, faults=faults, seed=args.seed, labels=labels,
                                                     sensors=len(devices), step_s=args.step):
        sender = senders.get(key)
        if sender is None:  # poison: published as a message of its own by one of the devices
            ordered[zlib.crc32(key.encode()) % len(ordered)].send(payload)
            messages += 1
        else:
            messages += sender.add(json.loads(payload))
        sent += 1
        ahead = sent / args.rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    messages += sum(s.flush() for s in ordered)
    acknowledged = 0
    for sender in ordered:
        for info in sender.in_flight:
            info.wait_for_publish(30)
            acknowledged += info.is_published()
        sender.device.close()
    elapsed = time.monotonic() - started
    if args.labels:
        Path(args.labels).write_text(json.dumps({"anomalies": sorted(labels.anomalies), "poison": labels.poison,
                                                 "duplicates": labels.duplicates}))
    print(json.dumps({"devices": len(devices), "sent": sent, "seconds": round(elapsed, 2),
                      "records_per_s": round(sent / elapsed) if elapsed else None, "messages": messages,
                      "acknowledged": acknowledged, "readings_per_message": ordered[0].per_message,
                      "poison": labels.poison, "duplicates": labels.duplicates,
                      "anomalies": len(labels.anomalies)}))
    return 0 if acknowledged == messages else 3


if __name__ == "__main__":
    sys.exit(main())
