"""Who may connect and publish, decided as IoT Core decides it, from the emulator's registry.

A connection is admitted when its client certificate is registered (by its id, the SHA-256 of its
DER) and ACTIVE, and the policies attached to it allow `iot:Connect` on `client/<client id>` with
IoT's policy variables and condition keys set for that connection: the thing the client id names,
if the certificate is attached to it (`iot:Connection.Thing.IsAttached`), its type and attributes.
Each publish is evaluated the same way on `topic/<topic>`. Nothing is copied from the policies into
an ACL: they are read from the registry and evaluated (localdev/access/policy.py).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from localdev.access.policy import Policy, Request, evaluate

VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class Connection:
    """What a connection was admitted as: its certificate, client id, and policy context."""

    certificate_arn: str
    client_id: str
    context: dict[str, str]
    policies: tuple[Policy, ...] = field(default_factory=tuple)


class Refused(Exception):
    """IoT refuses the connection or publish; the message says why (for the broker's figures)."""


class Unauthenticated(Refused):
    """A connection refused before any policy is read: no certificate, or one IoT does not hold as ACTIVE
    (AWS counts these as Connection.AuthNError; a policy's refusal is Connect.AuthError)."""


def certificate_id(der: bytes) -> str:
    """IoT's certificate id: the SHA-256 of the certificate's DER."""
    return hashlib.sha256(der).hexdigest()


def substituted(document: Any, context: dict[str, str]) -> Any:
    """The policy document with IoT's policy variables replaced by this connection's values. A
    variable with no value leaves a text no resource matches, so its statement does not apply."""
    if isinstance(document, str):
        return VARIABLE.sub(lambda m: context.get(m.group(1), f"\x00unresolved {m.group(1)}"), document)
    if isinstance(document, dict):
        return {k: substituted(v, context) for k, v in document.items()}
    if isinstance(document, list):
        return [substituted(v, context) for v in document]
    return document


class Authority:
    """Connect and publish decisions for one account and region of the emulator (boto3 IoT client
    with the emulator's own keys: this is IoT itself reading its registry)."""

    def __init__(self, iot: Any, region: str, account: str) -> None:
        self.iot, self.region, self.account = iot, region, account

    def arn(self, resource: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:{resource}"

    def connect(self, der: bytes | None, client_id: str) -> Connection:
        """The connection IoT would admit, or Refused naming why."""
        if not der:
            raise Unauthenticated("no client certificate")
        cert_id = certificate_id(der)
        try:
            description = self.iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
        except self.iot.exceptions.ResourceNotFoundException:
            raise Unauthenticated("certificate not registered") from None
        if description["status"] != "ACTIVE":
            raise Unauthenticated(f"certificate {description['status']}")
        cert_arn = description["certificateArn"]
        things = self.iot.list_principal_things(principal=cert_arn)["things"]
        context = {"iot:ClientId": client_id, "iot:Connection.Thing.ThingName": client_id,
                   "iot:Connection.Thing.IsAttached": "true" if client_id in things else "false"}
        if client_id in things:
            thing = self.iot.describe_thing(thingName=client_id)
            if thing.get("thingTypeName"):
                context["iot:Connection.Thing.ThingTypeName"] = thing["thingTypeName"]
            for key, value in (thing.get("attributes") or {}).items():
                context[f"iot:Connection.Thing.Attributes[{key}]"] = value
        policies = tuple(
            Policy.parse(f"IoT policy {p['policyName']}",
                         self.iot.get_policy(policyName=p["policyName"])["policyDocument"])
            for p in self.iot.list_attached_policies(target=cert_arn)["policies"])
        connection = Connection(cert_arn, client_id, context, policies)
        self.authorize(connection, "iot:Connect", self.arn(f"client/{client_id}"))
        return connection

    def publish(self, connection: Connection, topic: str) -> None:
        self.authorize(connection, "iot:Publish", self.arn(f"topic/{topic}"))

    def retain_publish(self, connection: Connection, topic: str) -> None:
        """What a publish with the RETAIN flag needs besides `iot:Publish`."""
        self.authorize(connection, "iot:RetainPublish", self.arn(f"topic/{topic}"))

    def subscribe(self, connection: Connection, topic_filter: str) -> None:
        self.authorize(connection, "iot:Subscribe", self.arn(f"topicfilter/{topic_filter}"))

    @staticmethod
    def authorize(connection: Connection, action: str, resource: str) -> None:
        policies = [Policy(p.source, substituted(p.document, connection.context)) for p in connection.policies]
        decision = evaluate(Request(connection.certificate_arn, action, resource, connection.context), policies)
        if not decision.allowed:
            raise Refused(f"{action} on {resource.split(':', 5)[-1]} not allowed: {decision.reason}")
