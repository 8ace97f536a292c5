"""AWS IoT Core's own log, for the stack that owns it in its account and region.

IoT writes its connection, authorization and rule logs to one log group per account and region,
`AWSIotLogsV2`, once its logging options (SetV2LoggingOptions, a per-region singleton) name a
role; left to itself it creates that group unencrypted and keeps it for ever. The owning stack
creates it first, with its key and retention, and sets the options with a role that may write
there and nowhere else. Only one stack of an account and region may own them
(`IotConfig.account_logging`): production does; a destroyable environment shares whatever the
account has (docs/iot.md, "IoT logging").
"""
from __future__ import annotations

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iot_logging_options import IotLoggingOptions
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.context import StackContext
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.settings import IotConfig
from policy.conventions import IOT_LOG_GROUP


class IotAccountLogging(Construct):
    def __init__(self, scope: Construct, id_: str, *, context: StackContext, settings: IotConfig) -> None:
        super().__init__(scope, id_)
        naming, account = context.naming, context.account
        self.log_group = EncryptedLogGroup(self, "group", name=IOT_LOG_GROUP, key=context.key,
                                           retention_in_days=context.log_retention_days)
        role = IamRole(self, "role", name=naming.name("iot-logging"),
                       assume_role_policy=iam.assume_role_policy("iot.amazonaws.com", account_id=account.account_id))
        policy = IamRolePolicy(self, "policy", name=naming.name("iot-logging"), role=role.id, policy=iam.document(
            # The group exists (above): IoT needs no CreateLogGroup, PutRetentionPolicy or PutMetricFilter.
            # Authorized on `<group>:log-stream:<stream>`, which the bare group ARN does not match.
            iam.statement("FindOrMakeItsStreams", ["logs:CreateLogStream", "logs:DescribeLogStreams"],
                          [self.log_group.arn, f"{self.log_group.arn}:log-stream:*"]),
            iam.statement("WriteIotLogs", ["logs:PutLogEvents"], [f"{self.log_group.arn}:log-stream:*"]),
        ))
        self.options = IotLoggingOptions(self, "options", default_log_level=settings.log_level, role_arn=role.arn,
                                         disable_all_logs=False, depends_on=[self.log_group.log_group, policy])
