"""Every service: how moto answers what it lacks, and retried requests."""
from __future__ import annotations

from typing import Any

from localdev.moto_extensions.registry import error_answer, extension


@extension
def unimplemented_operations_fail_fast() -> None:
    """moto answers an operation it lacks with HTTP 500, which the provider retries for
    many minutes, so a gap looks like a hang. 501 is not retried: the apply fails at once
    and the error names the operation."""
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        try:
            return original(self)
        except NotImplementedError as error:
            message = f"{error} in moto ({self.service_name}); teach it in localdev/moto_extensions/"
            return error_answer(self, 501, message, json_type="NotImplemented", xml_code="NotImplemented")

    BaseResponse.call_action = call_action


@extension
def retried_requests_replay_the_first_answer() -> None:
    """AWS SDKs retry a call whose answer they did not get (a connection dropped by
    moto's development HTTP server under load), with the same `amz-sdk-invocation-id`.
    moto then runs a create twice, and the retry fails with AlreadyExists although the
    first call succeeded (seen once in several deploys, on a replication group). A retried
    invocation gets the first answer again, as an idempotent AWS API would give."""
    from collections import OrderedDict as Ordered

    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action
    answered: Ordered[str, object] = Ordered()

    def call_action(self: BaseResponse) -> Any:
        invocation = (self.headers.get("amz-sdk-invocation-id") or "").strip()
        if invocation and invocation in answered:
            return answered[invocation]
        answer = original(self)
        if invocation and isinstance(answer, tuple) and answer and isinstance(answer[0], int) and answer[0] < 300:
            answered[invocation] = answer
            while len(answered) > 20_000:
                answered.popitem(last=False)
        return answer

    BaseResponse.call_action = call_action
