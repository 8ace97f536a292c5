"""The factory's incidents topic: encrypted, separate from the operations alerts topic,
reaching whoever the config subscribes (per line or severity, by filter policy).

The processor publishes each incident's open and close to it from its outbox
(processor/outbox.py), through the VPC's SNS interface endpoint; `publish_statements` is
exactly the IAM that takes.
"""
from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.context import StackContext
from pipeline_lib.settings import IncidentConfig
from pipeline_lib.subscriptions import subscribe


class IncidentTopic(Construct):
    def __init__(self, scope: Construct, id_: str, *, context: StackContext, settings: IncidentConfig) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self.settings = settings
        self._key = key
        name = naming.name("incidents")
        # Only this account's principals may publish or subscribe (its IAM then decides who).
        policy = iam.document({
            "Sid": "ThisAccountOnly", "Effect": "Allow",
            "Principal": {"AWS": f"arn:{account.partition}:iam::{account.account_id}:root"},
            "Action": ["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:Publish", "sns:Subscribe"],
            "Resource": account.arn("sns", name),
        })
        self.topic = SnsTopic(self, "topic", name=name, kms_master_key_id=key.arn, policy=policy)
        self.subscriptions = [subscribe(self, self.topic.arn, account, s.target, s.filter_policy)
                              for s in settings.subscriptions]

    @property
    def arn(self) -> str:
        return self.topic.arn

    def publish_statements(self) -> list[dict[str, Any]]:
        """Publish to this topic, and the key use SNS makes on the publisher's behalf."""
        return [
            iam.statement("PublishIncidents", ["sns:Publish"], [self.topic.arn]),
            iam.statement("EncryptIncidentsThroughSns", ["kms:GenerateDataKey*", "kms:Decrypt"], [self._key.arn],
                          condition={"StringEquals": {"kms:ViaService": self._key.via("sns")}}),
        ]
