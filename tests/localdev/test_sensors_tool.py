"""`python -m tools.sensors` against the extended emulator: the key stays here, only the CSR goes to
IoT; the thing, its certificate and the stack's policy are tied together; revoking undoes it."""
from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from localdev import moto_extensions
from localdev.moto_extensions.iot import IOT_CA_ENV
from localdev.servers import MotoServer
from localdev.tls import make_ca
from tools.sensors import Environment, make_key_and_csr, register, revoke, sensors

ENV = Environment(suffix="t1", readings_per_message=10, batch_wait_s=10.0, basic_ingest=True)


@pytest.fixture(scope="module")
def iot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    moto_extensions.apply_all()
    ca = tmp_path_factory.mktemp("iot-ca")
    make_ca(ca, "test IoT CA")
    patch = pytest.MonkeyPatch()
    patch.setenv(IOT_CA_ENV, str(ca))
    server = MotoServer()
    client = boto3.client("iot", region_name="eu-west-1", endpoint_url=server.url, aws_access_key_id="t",
                          aws_secret_access_key="t")
    # What the factory stack deploys (pipeline_lib/iot_ingest.py): its thing type and device policy.
    client.create_thing_type(thingTypeName=ENV.thing_type)
    client.create_policy(policyName=ENV.policy, policyDocument='{"Version": "2012-10-17", "Statement": []}')
    yield client
    server.close()
    patch.undo()


def test_register_keeps_the_key_here_and_gets_a_certificate_for_it_from_the_csr_alone(iot: Any, tmp_path: Path) -> None:
    sent: list[dict] = []
    iot.meta.events.register("provide-client-params.iot.*", lambda params, **_: sent.append(dict(params)))
    config = register(iot, ENV, "line-1", "temp-1-00", tmp_path, say=lambda _: None)
    folder = tmp_path / "factory-t1_line-1_temp-1-00"
    key = serialization.load_pem_private_key((folder / "device.key").read_bytes(), password=None)
    assert stat.S_IMODE((folder / "device.key").stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate((folder / "device.pem").read_bytes())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    key_text = (folder / "device.key").read_text()
    assert not any(key_text.strip().splitlines()[1] in json.dumps(p) for p in sent)  # the key never went out
    assert any("certificateSigningRequest" in p for p in sent)
    assert json.loads((folder / "device.json").read_text()) == {
        "thing_name": "factory-t1:line-1:temp-1-00", "line_id": "line-1", "sensor_id": "temp-1-00",
        "endpoint": config.endpoint, "port": 8883,
        "topic": "$aws/rules/factory_readings_t1/factory/line-1/temp-1-00/readings",
        "certificate_id": config.certificate_id, "certificate": "device.pem", "private_key": "device.key",
        "readings_per_message": 10, "batch_wait_s": 10.0, "root_ca": None}


def test_register_makes_a_thing_of_the_stacks_type_tied_to_its_certificate_and_the_device_policy(
        iot: Any, tmp_path: Path) -> None:
    config = register(iot, ENV, "line-1", "temp-1-01", tmp_path, say=lambda _: None)
    thing = iot.describe_thing(thingName=config.thing_name)
    assert thing["thingTypeName"] == "factory-sensor-t1"
    assert thing["attributes"] == {"line_id": "line-1", "sensor_id": "temp-1-01"}
    (principal,) = iot.list_thing_principals(thingName=config.thing_name)["principals"]
    assert principal.endswith(f"cert/{config.certificate_id}")
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == ["factory-sensor-t1"]
    assert iot.describe_certificate(certificateId=config.certificate_id)["certificateDescription"]["status"] == "ACTIVE"


def test_register_with_the_devices_own_csr_writes_no_key(iot: Any, tmp_path: Path) -> None:
    _, csr = make_key_and_csr("made on the device")
    register(iot, ENV, "line-2", "flow-2-00", tmp_path, csr_pem=csr, say=lambda _: None)
    folder = tmp_path / "factory-t1_line-2_flow-2-00"
    assert sorted(p.name for p in folder.iterdir()) == ["device.json", "device.pem"]


def test_a_sensor_already_registered_is_refused_not_given_a_second_identity(iot: Any, tmp_path: Path) -> None:
    register(iot, ENV, "line-1", "vibr-1-02", tmp_path / "a", say=lambda _: None)
    with pytest.raises(SystemExit, match="already registered: revoke it first"):
        register(iot, ENV, "line-1", "vibr-1-02", tmp_path / "b", say=lambda _: None)


def test_a_sensor_id_already_registered_on_another_line_is_refused_before_anything_is_made(
        iot: Any, tmp_path: Path) -> None:
    # the processor keys a sensor's anomaly state, latest value and stream partition by its sensor id alone: a second
    # device registered as pres-1-07 on another line would feed the first one's detector and overwrite its latest value
    register(iot, ENV, "line-1", "pres-1-07", tmp_path / "a", say=lambda _: None)
    certificates = len(iot.list_certificates()["certificates"])
    with pytest.raises(SystemExit, match="sensor pres-1-07 is already registered on line line-1 "
                                         r"\(factory-t1:line-1:pres-1-07\): a sensor id names one sensor"):
        register(iot, ENV, "line-2", "pres-1-07", tmp_path / "b", say=lambda _: None)
    assert not (tmp_path / "b").exists()
    assert len(iot.list_certificates()["certificates"]) == certificates


def test_an_id_that_cannot_be_a_topic_level_is_refused_before_anything_is_made(iot: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sensor id 'temp/#'"):
        register(iot, ENV, "line-1", "temp/#", tmp_path, say=lambda _: None)
    assert not list(tmp_path.iterdir())


def test_a_sensor_id_of_64_characters_registers_as_its_whole_thing_name(iot: Any, tmp_path: Path) -> None:
    # its thing name (82 characters) is over X.509's 64 for a common name: the CSR must not carry it there
    sensor = "s" * 64
    config = register(iot, ENV, "line-1", sensor, tmp_path, say=lambda _: None)
    assert config.thing_name == f"factory-t1:line-1:{sensor}"
    assert iot.describe_thing(thingName=config.thing_name)["attributes"] == {"line_id": "line-1", "sensor_id": sensor}


def test_ids_whose_thing_name_would_pass_iots_128_characters_are_refused_before_anything_is_made(
        iot: Any, tmp_path: Path) -> None:
    # each id is within its own 64 characters, but the thing name (also the MQTT client id) holds both, and IoT
    # refuses a thing name or client id over 128: on AWS CreateThing would fail after the certificate was made
    line, sensor = "l" * 64, "s" * 64
    certificates = len(iot.list_certificates()["certificates"])
    with pytest.raises(ValueError, match=r"thing name factory-t1:l{64}:s{64} is 140 characters \(IoT allows 128"):
        register(iot, ENV, line, sensor, tmp_path, say=lambda _: None)
    assert not list(tmp_path.iterdir())
    assert len(iot.list_certificates()["certificates"]) == certificates


def test_revoke_marks_the_certificate_revoked_detaches_it_and_deletes_the_thing(iot: Any, tmp_path: Path) -> None:
    config = register(iot, ENV, "line-3", "curr-3-00", tmp_path, say=lambda _: None)
    assert revoke(iot, ENV, "line-3", "curr-3-00", say=lambda _: None) == [config.certificate_id]
    description = iot.describe_certificate(certificateId=config.certificate_id)["certificateDescription"]
    assert description["status"] == "REVOKED"
    assert iot.list_attached_policies(target=description["certificateArn"])["policies"] == []
    assert config.thing_name not in [t["thingName"] for t in iot.list_things()["things"]]


def test_list_shows_each_sensor_with_its_line_and_certificate_status(iot: Any, tmp_path: Path) -> None:
    register(iot, ENV, "line-4", "pres-4-00", tmp_path, say=lambda _: None)
    row = next(s for s in sensors(iot, ENV) if s["sensor"] == "pres-4-00")
    assert (row["line"], row["thing"]) == ("line-4", "factory-t1:line-4:pres-4-00")
    assert row["certificates"].endswith("ACTIVE")


def test_the_command_registers_several_sensors_of_one_line_at_once_and_revokes_them(
        iot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.sensors.__main__ import main

    # the command reads the stack's settings for the suffix; one no other test deploys (moto's
    # backends are shared by every emulator of this process)
    env = Environment.of("cli")
    iot.create_thing_type(thingTypeName=env.thing_type)
    iot.create_policy(policyName=env.policy, policyDocument='{"Version": "2012-10-17", "Statement": []}')
    for name, value in (("AWS_ENDPOINT_URL", iot.meta.endpoint_url), ("AWS_ACCESS_KEY_ID", "t"),
                        ("AWS_SECRET_ACCESS_KEY", "t")):
        monkeypatch.setenv(name, value)
    assert main(["register", "line-2", "temp-2-00", "pres-2-01", "--suffix", "cli", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["factory-cli_line-2_pres-2-01", "factory-cli_line-2_temp-2-00"]
    assert {(r["line"], r["sensor"]) for r in sensors(iot, env)} == {("line-2", "temp-2-00"), ("line-2", "pres-2-01")}
    assert main(["revoke", "line-2", "temp-2-00", "pres-2-01", "--suffix", "cli"]) == 0
    assert sensors(iot, env) == []
