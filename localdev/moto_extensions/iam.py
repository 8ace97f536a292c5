"""IAM: the AWS managed policies the stacks attach."""
from __future__ import annotations

import os

from localdev.moto_extensions.registry import extension


@extension
def aws_managed_policies() -> None:
    """The stacks attach AWS managed policies (AWS Backup's service role policies, RDS
    enhanced monitoring). moto knows them but loads them only when asked."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"


@extension
def policy_conditions_on_absent_keys() -> None:
    """moto evaluates a bucket policy on every object call, but a condition whose key the request
    does not carry counts as met there, and a statement whose condition is not met answers
    "denied" whatever its effect. So the archive's `DenyInsecureTransport` (`aws:SecureTransport`
    false, a key moto never supplies) denied every GetObject. AWS: a condition on a key absent from
    the request does not match (except `...IfExists`, `Null` and the negated operators), and a
    statement whose condition does not match does not apply. The emulator's endpoint is plain HTTP
    on loopback, so `aws:SecureTransport` is absent from its requests; on AWS every call is HTTPS."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    permitted = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self: IAMPolicyStatement, action: str, resource: str = "*", principal: str | None = None,
                            incoming_condition_values: dict[str, str] | None = None) -> PermissionResult:
        conditions = self._statement.get("Condition") or {}
        if not _conditions_may_hold(conditions, incoming_condition_values or {}):
            return PermissionResult.NEUTRAL  # the statement does not apply to this request
        return permitted(self, action, resource, principal, incoming_condition_values)

    IAMPolicyStatement.is_action_permitted = is_action_permitted


def _conditions_may_hold(conditions: dict, values: dict) -> bool:
    present = {key.lower() for key in values}
    for operator, keys in conditions.items():
        for key, expected in (keys or {}).items():
            if key.lower() in present:
                continue  # moto compares the values
            if operator.endswith("IfExists") or "Not" in operator:
                continue  # an absent key satisfies these
            if operator == "Null":
                if str(expected).lower() == "true":
                    continue
                return False
            return False
    return True
