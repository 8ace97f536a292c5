"""The factory's front door for devices: AWS IoT Core, one identity per sensor, a rule into the stream.

A sensor is a thing of this stack's thing type, registered by `python -m tools.sensors register`
(never by the stack: its key and certificate are the device's secret). It connects with its
certificate, as its own thing name, and may publish only to its own topic, which names its
line and sensor; the device policy says so with the thing's own variables, so one policy
serves every sensor and none can speak for another. The topic rule puts each message into
the stream keyed by the sensor (its topic's third level), so a sensor's readings keep their
order, wrapped with the line and sensor its topic names: the identity comes from what IoT
authenticated, never from what the body claims. The device's bytes travel base64-encoded, so
no payload, however malformed, can fail the rule's SQL (a failed SQL reaches no error action):
the processor dead-letters what it cannot read, with the reason. An action that fails (the
stream throttles, the role or the key refuses) goes to the error action, an encrypted log group.

The rule's role may put records into this stream and use the key for it, nothing else; the
error action writes with a role of its own.
"""
from __future__ import annotations

import json
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iot_policy import IotPolicy
from cdktf_cdktf_provider_aws.iot_thing_type import IotThingType, IotThingTypeProperties
from cdktf_cdktf_provider_aws.iot_topic_rule import (
    IotTopicRule,
    IotTopicRuleErrorAction,
    IotTopicRuleErrorActionCloudwatchLogs,
    IotTopicRuleKinesis,
)
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.alarms import AlarmSpec, MetricAlarmSpec, Widget
from pipeline_lib.context import StackContext
from pipeline_lib.data_stream import DataStream
from pipeline_lib.iot_topics import (
    LINE_ATTRIBUTE,
    LINE_LEVEL,
    SENSOR_ATTRIBUTE,
    SENSOR_LEVEL,
    TOPIC_FILTER,
    device_topic,
    rule_name,
    topic_thing_name_sql,
)
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.settings import AlarmConfig, IotConfig

SQL_VERSION = "2016-03-23"
IOT_METRICS = "AWS/IoT"


def rule_sql(workload: str, suffix: str) -> str:
    """What the rule puts on the stream (processor/records.py decodes it): the line and sensor from the
    topic, the device's message as it arrived (base64: any bytes pass the SQL), IoT's receipt time.

    Only from the sensor the topic names: the message's MQTT client id must be that sensor's thing name.
    The device policy already keeps each certificate to its own client id and topic; this keeps out
    whoever else may publish there (an IAM principal with `iot:Publish` over HTTPS, whose clientid() is
    `n/a`, or an MQTT client with a broader policy under another client id): IoT drops such a message
    before any action, with no error action."""
    return (f"SELECT topic({LINE_LEVEL}) AS line_id, topic({SENSOR_LEVEL}) AS sensor_id, "
            f"encode(*, 'base64') AS payload, timestamp() AS received_at_ms FROM '{TOPIC_FILTER}' "
            f"WHERE clientid() = {topic_thing_name_sql(workload, suffix)}")


def iot_expression(text: str) -> str:
    """IoT's own `${...}` (a policy variable, a substitution template) as Terraform must be given it:
    `$${...}`, which Terraform passes through instead of interpolating."""
    return f"$${{{text}}}"


PARTITION_KEY = iot_expression(f"topic({SENSOR_LEVEL})")  # the sensor: one sensor's readings stay on one shard, in order


class IotIngest(Construct):
    def __init__(self, scope: Construct, id_: str, *, context: StackContext, stream: DataStream,
                 settings: IotConfig) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self.settings = settings
        self.rule_name = rule_name(naming.workload, naming.suffix)
        self.thing_type = IotThingType(
            self, "thing-type", name=naming.name("sensor"),
            properties=IotThingTypeProperties(
                description=f"A {naming.workload} sensor: attributes {LINE_ATTRIBUTE}, {SENSOR_ATTRIBUTE}; "
                            "registered by python -m tools.sensors",
                searchable_attributes=[LINE_ATTRIBUTE, SENSOR_ATTRIBUTE]),
            # Its properties are set once, at creation: a change would replace the type, and AWS deletes
            # a thing type only 5 minutes after deprecating it and only once no thing belongs to it
            # (DeleteThingType), so the apply would leave it deprecated (no new registrations) and fail.
            # Changing them is a new type and a re-registration of every sensor (docs/iot.md).
            lifecycle=TerraformResourceLifecycle(ignore_changes=["properties"]),
        )
        self.device_policy = IotPolicy(self, "policy", name=naming.name("sensor"),
                                       policy=json.dumps(self.device_policy_document(account, naming.name("sensor"))))
        self.error_log = EncryptedLogGroup(self, "rule-errors", name=naming.path("iot-rule-errors"), key=key,
                                           retention_in_days=context.log_retention_days)
        trust = iam.assume_role_policy("iot.amazonaws.com", account_id=account.account_id)
        self.rule_role = IamRole(self, "rule-role", name=naming.name("iot-rule"), assume_role_policy=trust)
        rule_policy = IamRolePolicy(self, "rule-policy", name=naming.name("iot-rule-put"), role=self.rule_role.id,
                                    policy=iam.document(*self._put_statements(stream, context)))
        self.error_role = IamRole(self, "error-role", name=naming.name("iot-rule-errors"), assume_role_policy=trust)
        error_policy = IamRolePolicy(
            self, "error-policy", name=naming.name("iot-rule-errors"), role=self.error_role.id,
            policy=iam.document(
                # What IoT's CloudWatch Logs action calls (AWS IoT developer guide, "CloudWatch Logs"). CloudWatch
                # Logs authorizes both on `<group>:log-stream:<stream>` (DescribeLogStreams with an empty stream),
                # which the bare group ARN does not match.
                iam.statement("FindOrMakeTheErrorStream", ["logs:CreateLogStream", "logs:DescribeLogStreams"],
                              [self.error_log.arn, f"{self.error_log.arn}:log-stream:*"]),
                iam.statement("WriteRuleErrors", ["logs:PutLogEvents"], [f"{self.error_log.arn}:log-stream:*"]),
            ))
        self.rule = IotTopicRule(
            self, "rule", name=self.rule_name, enabled=True, sql=rule_sql(naming.workload, naming.suffix),
            sql_version=SQL_VERSION,
            description=f"Each device message into {stream.name}, keyed by its sensor",
            kinesis=[IotTopicRuleKinesis(role_arn=self.rule_role.arn, stream_name=stream.name,
                                         partition_key=PARTITION_KEY)],
            error_action=IotTopicRuleErrorAction(cloudwatch_logs=IotTopicRuleErrorActionCloudwatchLogs(
                log_group_name=self.error_log.name, role_arn=self.error_role.arn)),
            depends_on=[rule_policy, error_policy],
        )

    def device_topic(self, line: str, sensor: str) -> str:
        """Where the device of `sensor` on `line` publishes (Basic Ingest: straight to the rule)."""
        return device_topic(self.rule_name, line, sensor, basic_ingest=self.settings.basic_ingest)

    def device_policy_document(self, account: Any, thing_type: str) -> dict[str, Any]:
        """Connect only as the thing the certificate is attached to, a thing of this stack's type;
        publish only to that thing's own topic; nothing else (no subscribe, receive, shadow, jobs)."""
        thing = iot_expression("iot:Connection.Thing.ThingName")
        own_topic = self.device_topic(iot_expression(f"iot:Connection.Thing.Attributes[{LINE_ATTRIBUTE}]"),
                                      iot_expression(f"iot:Connection.Thing.Attributes[{SENSOR_ATTRIBUTE}]"))
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "ConnectAsItsOwnThing", "Effect": "Allow", "Action": "iot:Connect",
             "Resource": account.arn("iot", f"client/{thing}"),
             "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"},
                           "StringEquals": {"iot:Connection.Thing.ThingTypeName": thing_type}}},
            {"Sid": "PublishItsOwnReadings", "Effect": "Allow", "Action": "iot:Publish",
             "Resource": account.arn("iot", f"topic/{own_topic}")},
        ]}

    @staticmethod
    def _put_statements(stream: DataStream, context: StackContext) -> list[dict[str, Any]]:
        """Exactly what the rule's Kinesis action does: PutRecord on this stream, and the key use
        Kinesis makes for it on an encrypted stream."""
        return [
            iam.statement("PutDeviceMessages", ["kinesis:PutRecord"], [stream.arn]),
            iam.statement("EncryptThroughKinesis", ["kms:GenerateDataKey"], [context.key.arn],
                          condition={"StringEquals": {"kms:ViaService": context.key.via("kinesis")}}),
        ]

    @property
    def thing_type_name(self) -> str:
        return self.thing_type.name

    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]:
        """The rule's failed actions, messages in its error log, and IoT's refusals. IoT reports
        connection and publish refusals per account and region (dimension Protocol), so every
        stack of the region sees the same count. A connection is refused at one of two steps, each
        with its own metric (AWS IoT metrics and dimensions): authentication, the certificate
        (Connection.AuthNError), then authorization, the policy's iot:Connect (Connect.AuthError)."""
        rule = {"RuleName": self.rule_name}
        return [
            MetricAlarmSpec(purpose="iot-rule-kinesis-failures",
                            description="The IoT rule failed to put device messages into the stream (they went to "
                                        "its error log group)",
                            namespace=IOT_METRICS, metric_name="Failure", dimensions={**rule, "ActionType": "Kinesis"},
                            statistic="Sum", comparison="GreaterThanThreshold", threshold=0, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="iot-rule-errors",
                            description="Device messages reached the IoT rule's error log group: read them there "
                                        "(base64OriginalPayload) and replay",
                            namespace="AWS/Logs", metric_name="IncomingLogEvents",
                            dimensions={"LogGroupName": self.error_log.name}, statistic="Sum",
                            comparison="GreaterThanThreshold", threshold=0, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="iot-rule-throttled", description="IoT throttled messages for the rule",
                            namespace=IOT_METRICS, metric_name="RuleMessageThrottled", dimensions=rule,
                            statistic="Sum", comparison="GreaterThanThreshold", threshold=0, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="iot-connect-authn-errors",
                            description="IoT refused connections at authentication (a certificate unknown, inactive "
                                        "or revoked; AWS counts probes of the account's endpoint here too)",
                            namespace=IOT_METRICS, metric_name="Connection.AuthNError", dimensions={"Protocol": "MQTT"},
                            statistic="Sum", comparison="GreaterThanThreshold",
                            threshold=thresholds.iot_auth_errors_per_5min, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="iot-connect-auth-errors",
                            description="IoT refused device connections its policy does not allow (a certificate "
                                        "not attached to the thing, a thing of another type, or a client id that "
                                        "is not its thing)",
                            namespace=IOT_METRICS, metric_name="Connect.AuthError", dimensions={"Protocol": "MQTT"},
                            statistic="Sum", comparison="GreaterThanThreshold",
                            threshold=thresholds.iot_auth_errors_per_5min, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
            MetricAlarmSpec(purpose="iot-publish-auth-errors",
                            description="IoT refused publishes a device's policy does not allow (another sensor's "
                                        "topic)",
                            namespace=IOT_METRICS, metric_name="PublishIn.AuthError", dimensions={"Protocol": "MQTT"},
                            statistic="Sum", comparison="GreaterThanThreshold",
                            threshold=thresholds.iot_auth_errors_per_5min, evaluation_periods=1,
                            treat_missing_data="notBreaching"),
        ]

    def widgets(self) -> list[Widget]:
        rule = ["RuleName", self.rule_name]
        return [Widget("IoT: device messages through the rule", [
            [IOT_METRICS, "TopicMatch", *rule],
            [IOT_METRICS, "Success", *rule, "ActionType", "Kinesis"],
            [IOT_METRICS, "Failure", *rule, "ActionType", "Kinesis", {"yAxis": "right"}],
            [IOT_METRICS, "Connection.AuthNError", "Protocol", "MQTT", {"yAxis": "right"}],
            [IOT_METRICS, "Connect.AuthError", "Protocol", "MQTT", {"yAxis": "right"}],
            [IOT_METRICS, "PublishIn.AuthError", "Protocol", "MQTT", {"yAxis": "right"}]])]
