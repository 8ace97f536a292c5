"""Register, revoke and list the factory's sensors in AWS IoT Core, without the stack ever holding a device secret.

`register` makes the sensor's key pair here, where the device is (or takes a CSR the device made
itself: then the key never leaves it), sends IoT only the certificate signing request
(CreateCertificateFromCsr), creates the sensor's thing of the stack's thing type with its line and
sensor as attributes, attaches the certificate to the thing and the stack's device policy to the
certificate, and writes what the device needs: its certificate, the endpoint, its client id and
topic, and how it batches readings. `revoke` marks the certificate REVOKED (IoT refuses it from
then on), detaches it and deletes the thing. `list` shows every sensor of the environment.
docs/iot.md walks a plant engineer through it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline_lib.iot_topics import LINE_ATTRIBUTE, SENSOR_ATTRIBUTE, device_topic, rule_name, thing_name

WORKLOAD = "factory"
MQTT_PORT = 8883  # MQTT over TLS with a client certificate
ENDPOINT_TYPE = "iot:Data-ATS"  # the endpoint whose server certificate chains to Amazon Root CA 1


@dataclass(frozen=True)
class Environment:
    """The names the factory stack of one suffix gives its devices (pipeline_lib/iot_ingest.py)."""

    suffix: str
    readings_per_message: int
    batch_wait_s: float
    basic_ingest: bool

    @property
    def thing_type(self) -> str:
        return f"{WORKLOAD}-sensor-{self.suffix}"

    @property
    def policy(self) -> str:
        return f"{WORKLOAD}-sensor-{self.suffix}"

    @property
    def rule(self) -> str:
        return rule_name(WORKLOAD, self.suffix)

    @classmethod
    def of(cls, suffix: str) -> Environment:
        from stacks.config import build_config

        iot = build_config(WORKLOAD, suffix, "", "").iot
        if iot is None:
            raise SystemExit(f"the {WORKLOAD} stack of {suffix} has no devices (WorkloadConfig.iot)")
        return cls(suffix, iot.readings_per_message, iot.batch_wait_s, iot.basic_ingest)


@dataclass(frozen=True)
class DeviceConfig:
    """What `register` writes for the device (device.json beside its certificate and key)."""

    thing_name: str  # also its MQTT client id
    line_id: str
    sensor_id: str
    endpoint: str
    port: int
    topic: str
    certificate_id: str
    certificate: str  # file names, relative to device.json
    private_key: str
    readings_per_message: int
    batch_wait_s: float
    # None: the system trust store, which holds Amazon Root CA 1 (the ATS endpoint's issuer).
    root_ca: str | None = None


def make_key_and_csr(common_name: str) -> tuple[bytes, bytes]:
    """(private key PEM, CSR PEM): a P-256 key made here, and a request signed with it. The common
    name is at most X.509's 64 characters; IoT does not read it (its certificate names itself)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
           .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, csr.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    """A file only its owner may read, created so (no moment when others could)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def register(iot: Any, env: Environment, line: str, sensor: str, out: Path, csr_pem: bytes | None = None,
             say: Callable[[str], None] = print) -> DeviceConfig:
    """Register one sensor; its files go to `out/<thing name>/`. With `csr_pem` the device made its
    own key and no key is written here."""
    from botocore.exceptions import ClientError

    name = thing_name(WORKLOAD, env.suffix, line, sensor)
    try:
        iot.describe_thing(thingName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    else:
        raise SystemExit(f"{name} is already registered: revoke it first (python -m tools.sensors revoke {line} {sensor})")
    # A sensor id names one sensor: the processor keys its readings' order, anomaly state and latest value by it.
    pages = iot.get_paginator("list_things").paginate(attributeName=SENSOR_ATTRIBUTE, attributeValue=sensor)
    for other in (t for page in pages for t in page["things"] if t.get("thingTypeName") == env.thing_type):
        raise SystemExit(f"sensor {sensor} is already registered on line {other['attributes'].get(LINE_ATTRIBUTE)} "
                         f"({other['thingName']}): a sensor id names one sensor (the processor keys its readings by "
                         "it); revoke that one first, or choose another id")
    folder = out / name.replace(":", "_")
    folder.mkdir(parents=True, exist_ok=False)
    key_file = None
    if csr_pem is None:
        key_pem, csr_pem = make_key_and_csr(sensor)  # the thing name may pass X.509's 64 for a common name
        key_file = folder / "device.key"
        _write_private(key_file, key_pem)  # before anything leaves this machine
    undo: list[Callable[[], Any]] = []
    try:
        certificate = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem.decode(), setAsActive=True)
        cert_arn, cert_id = certificate["certificateArn"], certificate["certificateId"]
        undo.append(lambda: _delete_certificate(iot, cert_id))
        iot.create_thing(thingName=name, thingTypeName=env.thing_type,
                         attributePayload={"attributes": {LINE_ATTRIBUTE: line, SENSOR_ATTRIBUTE: sensor}})
        undo.append(lambda: iot.delete_thing(thingName=name))
        iot.attach_thing_principal(thingName=name, principal=cert_arn)
        undo.append(lambda: iot.detach_thing_principal(thingName=name, principal=cert_arn))
        iot.attach_policy(policyName=env.policy, target=cert_arn)
        endpoint = iot.describe_endpoint(endpointType=ENDPOINT_TYPE)["endpointAddress"]
    except Exception:
        for step in reversed(undo):
            try:
                step()
            except ClientError:
                pass
        raise
    (folder / "device.pem").write_text(certificate["certificatePem"])
    config = DeviceConfig(name, line, sensor, endpoint, MQTT_PORT,
                          device_topic(env.rule, line, sensor, basic_ingest=env.basic_ingest), cert_id, "device.pem",
                          key_file.name if key_file else "(on the device)", env.readings_per_message, env.batch_wait_s)
    (folder / "device.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    say(f"registered {name}: certificate {cert_id[:12]}… ACTIVE, policy {env.policy}; files in {folder}")
    return config


def _delete_certificate(iot: Any, certificate_id: str) -> None:
    iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=certificate_id)


def revoke(iot: Any, env: Environment, line: str, sensor: str, say: Callable[[str], None] = print) -> list[str]:
    """Revoke every certificate of the sensor (IoT refuses a REVOKED certificate from then on), detach
    it from the policy and the thing, and delete the thing. The certificates stay, REVOKED, as the
    record of what was once allowed in. Returns their ids."""
    name = thing_name(WORKLOAD, env.suffix, line, sensor)
    principals = iot.list_thing_principals(thingName=name)["principals"]
    revoked = []
    for principal in principals:
        certificate_id = principal.rsplit("/", 1)[-1]
        iot.update_certificate(certificateId=certificate_id, newStatus="REVOKED")
        for policy in iot.list_attached_policies(target=principal)["policies"]:
            iot.detach_policy(policyName=policy["policyName"], target=principal)
        iot.detach_thing_principal(thingName=name, principal=principal)
        revoked.append(certificate_id)
    iot.delete_thing(thingName=name)
    say(f"revoked {name}: certificate(s) {', '.join(c[:12] + '…' for c in revoked) or 'none'} REVOKED, thing deleted")
    return revoked


def sensors(iot: Any, env: Environment) -> list[dict[str, str]]:
    """Every sensor of the environment: thing, line, sensor, and each certificate's status."""
    found = []
    pages = iot.get_paginator("list_things").paginate(thingTypeName=env.thing_type)
    for thing in (t for page in pages for t in page["things"]):
        statuses = []
        for principal in iot.list_thing_principals(thingName=thing["thingName"])["principals"]:
            description = iot.describe_certificate(certificateId=principal.rsplit("/", 1)[-1])["certificateDescription"]
            statuses.append(f"{description['certificateId'][:12]}… {description['status']}")
        attributes = thing.get("attributes", {})
        found.append({"thing": thing["thingName"], "line": attributes.get(LINE_ATTRIBUTE, "?"),
                      "sensor": attributes.get(SENSOR_ATTRIBUTE, "?"), "certificates": ", ".join(statuses) or "none"})
    return sorted(found, key=lambda s: (s["line"], s["sensor"]))
