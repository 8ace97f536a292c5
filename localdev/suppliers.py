"""`python -m localdev.suppliers`: the demo's suppliers, sending the retail traffic through the supplier
API (POST {url}/v1/updates with each supplier's API key), as suppliers' systems would.

The records are the retail producer's (processor/traffic.py: a skewed catalog, duplicates, reordering,
poison), split between the suppliers. Each supplier batches what it has and sends every `interval`; on
a 429 it waits and sends a bigger batch later; records Kinesis refused (the `failed` indexes) are sent
again. A poison payload is sent as a body of its own and refused at the edge (400). Beside the traffic,
what a careless or hostile caller sends: a body claiming another supplier, a batch over 500 records, a
record of the wrong type, no key and an unknown key. The last line on stdout is a JSON summary.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import requests
from jsonschema import Draft4Validator

from pipeline_lib.supplier_api_mapping import record_model
from processor.traffic import Faults, Labels
from processor.workloads import workload

RECORD_FIELDS = {"inventory_update": "inventory_updates", "product_upsert": "product_upserts"}
STAMPED = ("type", "supplier_id")
MAX_RECORDS = 500


@dataclass
class Supplier:
    supplier_id: str
    keys: list[str]  # key values; a rotating supplier sends with each in turn
    interval_s: float  # how often it sends what it has
    share: float  # of the traffic's records
    pending: deque = field(default_factory=deque)
    accepted: int = 0
    statuses: Counter = field(default_factory=Counter)
    retried_records: int = 0


class Sender:
    def __init__(self, url: str, ca: str) -> None:
        self.url = url.rstrip("/") + "/v1/updates"
        self.ca = ca
        self.statuses: Counter = Counter()
        self.lock = threading.Lock()
        self.session = threading.local()

    def post(self, body: bytes, key: str | None) -> requests.Response:
        http = getattr(self.session, "http", None)
        if http is None:
            http = self.session.http = requests.Session()
        headers = {"content-type": "application/json", **({"x-api-key": key} if key else {})}
        answer = http.post(self.url, data=body, headers=headers, verify=self.ca, timeout=60)
        with self.lock:
            self.statuses[answer.status_code] += 1
        return answer


@functools.cache
def _record_validator(record_type: str) -> Draft4Validator:
    return Draft4Validator(record_model(record_type))


def split(payload: bytes) -> tuple[str, dict] | None:
    """(array field, the record as a supplier sends it) for a record the API's model accepts; None
    for poison (sent alone, so that its refusal is its own and not its batch's)."""
    try:
        record = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("type") not in RECORD_FIELDS:
        return None
    sent = {k: v for k, v in record.items() if k not in STAMPED}
    if not _record_validator(record["type"]).is_valid(sent):
        return None
    return RECORD_FIELDS[record["type"]], sent


def send_supplier(sender: Sender, supplier: Supplier, done: threading.Event) -> None:
    """Send what is pending every `interval_s` until the traffic is over and nothing is left."""
    turn = 0
    while not (done.is_set() and not supplier.pending):
        started = time.monotonic()
        batch = [supplier.pending.popleft() for _ in range(min(MAX_RECORDS, len(supplier.pending)))]
        if batch:
            key = supplier.keys[turn % len(supplier.keys)]
            turn += 1
            body: dict[str, list[dict]] = {}
            order = []
            for array, record in batch:
                body.setdefault(array, []).append(record)
            for array in RECORD_FIELDS.values():  # the API's index order: inventory updates, then product upserts
                order += [(array, r) for r in body.get(array, [])]
            answer = sender.post(json.dumps(body).encode(), key)
            supplier.statuses[answer.status_code] += 1
            if answer.status_code == 200:
                result = answer.json()
                failed = {f["index"] for f in result["failed"]}
                supplier.accepted += result["accepted"]
                supplier.retried_records += len(failed)
                supplier.pending.extendleft(reversed([order[i] for i in sorted(failed)]))
            elif answer.status_code in (429, 502, 503):  # over its plan, or the stream busy: later, as one batch
                supplier.pending.extendleft(reversed(order))
                time.sleep(0.5)
            else:
                raise SystemExit(f"supplier {supplier.supplier_id}: {answer.status_code} {answer.text[:300]}")
        wait = supplier.interval_s - (time.monotonic() - started)
        if wait > 0:
            time.sleep(wait)


def misbehave(sender: Sender, suppliers: list[Supplier]) -> dict[str, Any]:
    """What the edge must refuse, each answer checked: (what, status, body's message)."""
    sample = {"event_id": str(uuid.uuid4()), "sku": "SKU-00001", "quantity": 1, "updated_at": "2026-12-03T09:00:00Z"}
    first, second = suppliers[0], suppliers[1]
    cases = [
        ("a body claiming another supplier", first.keys[0],
         {"inventory_updates": [{**sample, "supplier_id": second.supplier_id}]}, 400, "supplier_id"),
        ("a quantity that is not an integer", first.keys[0],
         {"inventory_updates": [{**sample, "quantity": "12"}]}, 400, "/inventory_updates/0/quantity"),
        ("a batch of 501 records", first.keys[0],
         {"inventory_updates": [dict(sample, event_id=str(uuid.uuid4())) for _ in range(300)],
          "product_upserts": [{"event_id": str(uuid.uuid4()), "sku": "SKU-00002", "name": "n", "category": "c",
                               "price": "1.00", "currency": "USD", "updated_at": "2026-12-03T09:00:00Z"}] * 201},
         400, "at most 500 records"),
        ("no API key", None, {"inventory_updates": [sample]}, 403, "API key"),
        ("an unknown API key", "not-a-key-" + uuid.uuid4().hex, {"inventory_updates": [sample]}, 403, "API key"),
    ]
    seen = []
    for what, key, body, status, says in cases:
        answer = sender.post(json.dumps(body).encode(), key)
        message = answer.json().get("message", "")
        if answer.status_code != status or says not in message:
            raise SystemExit(f"{what}: expected {status} saying {says!r}, got {answer.status_code} {answer.text[:300]}")
        seen.append({"what": what, "status": answer.status_code, "message": message[:160]})
    return {"refused": seen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.suppliers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the stage's URL")
    parser.add_argument("--ca", required=True, help="the CA the gateway's certificate chains to")
    parser.add_argument("--suppliers", required=True,
                        help='JSON: [{"supplier_id", "keys": [...], "interval_s", "share"}, ...]')
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--duplicates", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--poison", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    suppliers = [Supplier(s["supplier_id"], s["keys"], s["interval_s"], s["share"]) for s in json.loads(args.suppliers)]
    sender = Sender(args.url, args.ca)
    labels = Labels()
    count = int(args.rate * args.duration)
    records = workload("retail").generate(count, faults=Faults(args.duplicates, args.reorder, args.poison),
                                          seed=args.seed, labels=labels)
    done = threading.Event()
    errors: list[str] = []

    def run(supplier: Supplier) -> None:
        try:
            send_supplier(sender, supplier, done)
        except (SystemExit, Exception) as error:  # reported below: the run fails
            errors.append(str(error))
            supplier.pending.clear()

    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in suppliers]
    for thread in threads:
        thread.start()
    bounds, total = [], 0.0
    for supplier in suppliers:
        total += supplier.share
        bounds.append(total)
    started = time.monotonic()
    produced = poison_refused = 0
    for _, payload in records:
        parsed = split(payload)
        if parsed is None:  # poison: the supplier's bad body, alone, refused at the edge
            answer = sender.post(payload, suppliers[0].keys[0])
            if answer.status_code != 400:
                raise SystemExit(f"a poison payload was not refused: {answer.status_code} {answer.text[:200]}")
            poison_refused += 1
        else:
            at = (zlib.crc32(parsed[1]["sku"].encode()) % 10_000) / 10_000 * total
            supplier = suppliers[next(i for i, b in enumerate(bounds) if at < b)]
            supplier.pending.append(parsed)
        produced += 1
        ahead = produced / args.rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    refused = misbehave(sender, suppliers)
    done.set()
    for thread in threads:
        thread.join()
    if errors:
        print("suppliers: " + "; ".join(errors), file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    accepted = sum(s.accepted for s in suppliers)
    print(json.dumps({
        "sent": accepted, "seconds": round(elapsed, 2), "records_per_s": round(accepted / elapsed) if elapsed else None,
        "duplicates": labels.duplicates, "poison": labels.poison, "poison_refused": poison_refused,
        "statuses": {str(k): v for k, v in sorted(sender.statuses.items())},
        "suppliers": {s.supplier_id: {"accepted": s.accepted, "statuses": {str(k): v for k, v in s.statuses.items()},
                                      "resent_records": s.retried_records} for s in suppliers},
        **refused}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
