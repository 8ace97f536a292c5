"""The encrypted alerts topic, who it reaches, an alarm for every spec the constructs give,
and one dashboard per stack."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from constructs import Construct

from pipeline_lib.alarms import AlarmSpec, MathAlarmSpec, MetricAlarmSpec, Watched, Widget
from pipeline_lib.context import StackContext
from pipeline_lib.settings import AlarmConfig, AlertSubscription
from pipeline_lib.subscriptions import subscribe

# The dashboard's grid: two graphs a row, each half of CloudWatch's 24 columns wide.
WIDGET_WIDTH, WIDGET_HEIGHT, DASHBOARD_COLUMNS = 12, 6, 24


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        watched: Sequence[Watched],
        thresholds: AlarmConfig,
        subscriptions: Sequence[AlertSubscription] = (),
    ) -> None:
        """`watched`: every construct with alarms and graphs, in the dashboard's order."""
        super().__init__(scope, id_)
        naming, account = context.naming, context.account
        self._naming = naming
        self.watched = tuple(watched)
        self.topic = SnsTopic(self, "alerts", name=naming.name("alerts"), kms_master_key_id=context.key.arn)
        self.subscriptions = [subscribe(self, self.topic.arn, account, s) for s in subscriptions]
        self.alarms = {spec.purpose: self._alarm(spec) for part in watched for spec in part.alarms(thresholds)}
        widgets = [widget for part in watched for widget in part.widgets()]
        self.dashboard = CloudwatchDashboard(
            self, "dashboard", dashboard_name=naming.name("pipeline"),
            dashboard_body=json.dumps(self._dashboard_body(account.region, widgets)),
        )

    def _alarm(self, spec: AlarmSpec) -> CloudwatchMetricAlarm:
        common: dict[str, Any] = {
            "alarm_name": self._naming.name(spec.purpose),
            "alarm_description": spec.description,
            "comparison_operator": spec.comparison,
            "threshold": spec.threshold,
            "evaluation_periods": spec.evaluation_periods,
            "treat_missing_data": spec.treat_missing_data,
            "alarm_actions": [self.topic.arn],
            "ok_actions": [self.topic.arn],
        }
        if isinstance(spec, MetricAlarmSpec):
            return CloudwatchMetricAlarm(
                self, spec.purpose, namespace=spec.namespace, metric_name=spec.metric_name,
                dimensions=dict(spec.dimensions) or None, period=spec.period_seconds,
                # a percentile ("p99") is an extended statistic; Sum, Average, ... are plain ones
                **({"extended_statistic": spec.statistic} if spec.statistic.startswith("p")
                   else {"statistic": spec.statistic}),
                **common,
            )
        assert isinstance(spec, MathAlarmSpec)
        queries = [
            CloudwatchMetricAlarmMetricQuery(
                id=query_id,
                metric=CloudwatchMetricAlarmMetricQueryMetric(
                    namespace=m.namespace, metric_name=m.metric_name, dimensions=dict(m.dimensions),
                    period=m.period_seconds, stat=m.statistic,
                ),
            )
            for query_id, m in spec.metrics.items()
        ]
        queries.append(CloudwatchMetricAlarmMetricQuery(id="missing", expression=spec.expression, label=spec.label,
                                                        return_data=True))
        return CloudwatchMetricAlarm(self, spec.purpose, metric_query=queries, **common)

    @staticmethod
    def _dashboard_body(region: str, widgets: Sequence[Widget]) -> dict[str, Any]:
        per_row = DASHBOARD_COLUMNS // WIDGET_WIDTH
        return {"widgets": [
            {"type": "metric", "x": index % per_row * WIDGET_WIDTH, "y": index // per_row * WIDGET_HEIGHT,
             "width": WIDGET_WIDTH, "height": WIDGET_HEIGHT,
             "properties": {"title": widget.title, "region": region, "stat": "Sum", "period": 60,
                            "metrics": widget.metrics}}
            for index, widget in enumerate(widgets)
        ]}
