"""CloudWatch: an alarm that changes state notifies the SNS topics among its actions."""
from __future__ import annotations

import json

from localdev.moto_extensions.registry import extension


@extension
def cloudwatch_alarms_notify_their_topics() -> None:
    """moto keeps an alarm's state and actions but never acts on them, so nothing showed
    that an alarm reaches anyone. Here a state change publishes, to every SNS topic among
    the actions for the new state (alarm_actions for ALARM, ok_actions for OK, ...), the
    JSON notification CloudWatch sends, with its `ALARM: "<name>" in <region>` subject. The
    emulator evaluates no metrics: a state comes from SetAlarmState."""
    from moto.cloudwatch.models import Alarm
    from moto.core.utils import utcnow
    from moto.sns.models import sns_backends

    update = Alarm.update_state

    def update_state(self: Alarm, reason: str, reason_data: str, state_value: str) -> None:
        old = self.state_value
        update(self, reason, reason_data, state_value)
        if old == state_value or not self.actions_enabled:
            return
        actions = {"ALARM": self.alarm_actions, "OK": self.ok_actions,
                   "INSUFFICIENT_DATA": self.insufficient_data_actions}.get(state_value) or []
        account = self.alarm_arn.split(":")[4]
        message = json.dumps({
            "AlarmName": self.name, "AlarmDescription": self.description, "AWSAccountId": account,
            "AlarmConfigurationUpdatedTimestamp": self.configuration_updated_timestamp.isoformat(),
            "NewStateValue": state_value, "NewStateReason": reason, "OldStateValue": old,
            "StateChangeTime": utcnow().isoformat(), "Region": self.region_name, "AlarmArn": self.alarm_arn,
            "Trigger": {"MetricName": self.metric_name, "Namespace": self.namespace, "Statistic": self.statistic,
                        "Dimensions": [{"name": d.name, "value": d.value} for d in self.dimensions],
                        "Period": self.period, "EvaluationPeriods": self.evaluation_periods,
                        "ComparisonOperator": self.comparison_operator, "Threshold": self.threshold},
        })
        for arn in actions:
            parts = arn.split(":")
            if len(parts) < 6 or parts[2] != "sns":
                continue
            topic = sns_backends[parts[4]][parts[3]].topics.get(arn)
            if topic is not None:
                topic.publish(message, subject=f'{state_value}: "{self.name}" in {self.region_name}'[:100])

    Alarm.update_state = update_state
