"""SNS subscriptions from settings: who a topic reaches (the alerts topic, the incidents topic)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from pipeline_lib.account import AccountContext
from pipeline_lib.settings import AlertSubscription


def subscribe(scope: Construct, topic_arn: str, account: AccountContext, subscription: AlertSubscription,
              filter_policy: Mapping[str, list[str]] | None = None) -> SnsTopicSubscription:
    """One subscription; a bare SQS queue or Lambda function name means that one in this
    account and region. The id follows the subscription (and its filter), not its position
    in the list: reordering the list replaces nothing."""
    endpoint = subscription.endpoint
    if subscription.protocol == "sqs" and not endpoint.startswith("arn:"):
        endpoint = account.arn("sqs", endpoint)
    elif subscription.protocol == "lambda" and not endpoint.startswith("arn:"):
        endpoint = account.arn("lambda", f"function:{endpoint}")
    key = f"{subscription.protocol}:{subscription.endpoint}"
    if filter_policy:
        key += json.dumps(filter_policy, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    extra = {"filter_policy": json.dumps(filter_policy, sort_keys=True), "filter_policy_scope": "MessageAttributes"} \
        if filter_policy else {}
    return SnsTopicSubscription(scope, f"subscription-{subscription.protocol}-{digest}", topic_arn=topic_arn,
                                protocol=subscription.protocol, endpoint=endpoint, **extra)
