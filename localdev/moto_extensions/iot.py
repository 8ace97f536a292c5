"""IoT Core's registry: what moto lacks of what the factory stack and tools/sensors call."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from localdev.moto_extensions.registry import backend_state, extension


def _tags(backend: Any) -> dict[str, dict[str, str]]:
    return backend_state(backend, "iot_tags")


def _exists(backend: Any, arn: str) -> bool:
    """The ARN names a thing type, policy, topic rule or thing moto holds."""
    return (arn in backend.thing_types or any(p.arn == arn for p in backend.policies.values())
            or any(r.arn == arn for r in backend.rules.values()) or any(t.arn == arn for t in backend.things.values()))


@extension
def iot_tags_of_thing_types_policies_and_rules() -> None:
    """The provider tags every resource (default_tags) and reads the tags back after creating a
    thing type, policy or topic rule; moto keeps no IoT tags and has no tagging operations, so
    the read answered 501. Tags given at creation (a `tags` list; a topic rule's `x-amz-tagging`
    header) are kept, listed, changed and removed with their resource."""
    from moto.iot.exceptions import ResourceNotFoundException
    from moto.iot.responses import IoTResponse

    def given(pairs: list[dict[str, str]] | None) -> dict[str, str]:
        return {p["Key"]: p.get("Value", "") for p in pairs or []}

    def keep_tags(operation: str, arn_of: Any, read: Any) -> None:
        original = getattr(IoTResponse, operation)

        def call(self: IoTResponse) -> Any:
            answer = original(self)
            tags = read(self)
            if tags:
                _tags(self.iot_backend)[arn_of(self)] = tags
            return answer

        setattr(IoTResponse, operation, call)

    def arn(self: IoTResponse, kind: str, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.current_account}:{kind}/{name}"

    keep_tags("create_thing_type", lambda self: arn(self, "thingtype", self._get_param("thingTypeName")),
              lambda self: given(self._get_param("tags")))
    keep_tags("create_policy", lambda self: arn(self, "policy", self._get_param("policyName")),
              lambda self: given(self._get_param("tags")))
    keep_tags("create_topic_rule", lambda self: arn(self, "rule", self._get_param("ruleName")),
              lambda self: dict(parse_qsl(self.headers.get("x-amz-tagging") or "")))

    def forget(operation: str, arn_of: Any) -> None:
        original = getattr(IoTResponse, operation)

        def call(self: IoTResponse) -> Any:
            resource = arn_of(self)
            answer = original(self)
            _tags(self.iot_backend).pop(resource, None)
            return answer

        setattr(IoTResponse, operation, call)

    forget("delete_thing_type", lambda self: arn(self, "thingtype", self._get_param("thingTypeName")))
    forget("delete_policy", lambda self: arn(self, "policy", self._get_param("policyName")))
    forget("delete_topic_rule", lambda self: arn(self, "rule", self._get_param("ruleName")))

    def known(self: IoTResponse) -> str:
        resource = self._get_param("resourceArn")
        if not _exists(self.iot_backend, resource):
            raise ResourceNotFoundException(f"{resource} not found")
        return resource

    def list_tags_for_resource(self: IoTResponse) -> str:
        tags = _tags(self.iot_backend).get(known(self), {})
        return json.dumps({"tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})

    def tag_resource(self: IoTResponse) -> str:
        _tags(self.iot_backend).setdefault(known(self), {}).update(given(self._get_param("tags")))
        return "{}"

    def untag_resource(self: IoTResponse) -> str:
        tags = _tags(self.iot_backend).get(known(self), {})
        for key in self._get_param("tagKeys") or []:
            tags.pop(key, None)
        return "{}"

    for fn in (list_tags_for_resource, tag_resource, untag_resource):
        setattr(IoTResponse, fn.__name__, fn)


# Where the emulator finds the CA that signs device certificates made from a CSR (ca.pem, ca.key),
# as AWS IoT signs them with its own CA; localdev/session.py sets it for `make demo`.
IOT_CA_ENV = "LOCALDEV_IOT_CA_DIR"
CERTIFICATE_NOT_AFTER = (2049, 12, 31)  # IoT's certificates from a CSR are valid until the end of 2049


@extension
def iot_certificates_from_a_csr_are_signed_by_the_local_ca() -> None:
    """CreateCertificateFromCsr in moto ignores the CSR's key and signs a random one, so the device
    could never use its certificate. Here the CSR's signature is checked (a CSR its key did not
    sign is refused, as AWS refuses it), and its own public key is certified by the local IoT CA
    (`LOCALDEV_IOT_CA_DIR`) with AWS's subject and validity; the certificate id is the SHA-256 of
    its DER, AWS's rule (moto's default hashes the PEM text)."""
    import datetime
    import hashlib
    import os
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    from moto.iot.exceptions import InvalidRequestException
    from moto.iot.models import FakeCertificate, IoTBackend

    def compute_cert_id(self: FakeCertificate, certificate_pem: str) -> str:
        try:
            der = x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(serialization.Encoding.DER)
        except ValueError:  # not a certificate (some moto paths pass text): moto's own id
            return hashlib.sha256(certificate_pem.encode()).hexdigest()
        return hashlib.sha256(der).hexdigest()

    FakeCertificate.compute_cert_id = compute_cert_id

    def create_certificate_from_csr(self: IoTBackend, csr: str, set_as_active: bool) -> FakeCertificate:
        try:
            request = x509.load_pem_x509_csr(csr.encode())
        except ValueError:
            raise InvalidRequestException("The certificate signing request is not a valid PEM CSR") from None
        if not request.is_signature_valid:
            raise InvalidRequestException("The certificate signing request's signature does not verify")
        directory = os.environ.get(IOT_CA_ENV)
        if not directory:
            raise InvalidRequestException(f"the emulator has no IoT CA: set {IOT_CA_ENV} (localdev/session.py)")
        ca_cert = x509.load_pem_x509_certificate((Path(directory) / "ca.pem").read_bytes())
        ca_key = serialization.load_pem_private_key((Path(directory) / "ca.key").read_bytes(), password=None)
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AWS IoT Certificate")]))
            .issuer_name(ca_cert.subject)
            .public_key(request.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(datetime.datetime(*CERTIFICATE_NOT_AFTER, 23, 59, 59, tzinfo=datetime.UTC))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        return self.register_certificate(pem, ca_certificate_pem=None, set_as_active=set_as_active, status="INACTIVE")

    IoTBackend.create_certificate_from_csr = create_certificate_from_csr
