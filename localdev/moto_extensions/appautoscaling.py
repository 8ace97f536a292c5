"""Application Auto Scaling: tags of scalable targets."""
from __future__ import annotations

from localdev.moto_extensions.registry import backend_state, extension


@extension
def appautoscaling_tags() -> None:
    """The provider reads a scalable target's tags after creating it; moto ignores the
    Tags of RegisterScalableTarget and has no tagging operations."""
    import json

    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    def tags(self: ApplicationAutoScalingResponse) -> dict:
        return backend_state(self.applicationautoscaling_backend, "tags")

    register = ApplicationAutoScalingResponse.register_scalable_target
    deregister = ApplicationAutoScalingResponse.deregister_scalable_target

    def register_scalable_target(self: ApplicationAutoScalingResponse) -> str:
        answer = register(self)
        given = self._get_param("Tags")
        if given:
            tags(self).setdefault(json.loads(answer)["ScalableTargetARN"], {}).update(given)
        return answer

    def deregister_scalable_target(self: ApplicationAutoScalingResponse) -> str:
        backend = self.applicationautoscaling_backend
        key = (self._get_param("ServiceNamespace"), self._get_param("ResourceId"), self._get_param("ScalableDimension"))
        arns = [t.arn for t in backend.describe_scalable_targets(key[0], [key[1]], key[2])]
        answer = deregister(self)
        for arn in arns:
            tags(self).pop(arn, None)
        return answer

    def known(self: ApplicationAutoScalingResponse, arn: str) -> None:
        from moto.applicationautoscaling.exceptions import AWSValidationException

        backend = self.applicationautoscaling_backend
        if not any(t.arn == arn for by_id in backend.targets.values() for t in by_id.values()):
            raise AWSValidationException(f"No scalable target found for {arn}")

    def list_tags_for_resource(self: ApplicationAutoScalingResponse) -> str:
        arn = self._get_param("ResourceARN")
        known(self, arn)
        return json.dumps({"Tags": tags(self).get(arn, {})})

    def tag_resource(self: ApplicationAutoScalingResponse) -> str:
        arn = self._get_param("ResourceARN")
        known(self, arn)
        tags(self).setdefault(arn, {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self: ApplicationAutoScalingResponse) -> str:
        arn = self._get_param("ResourceARN")
        known(self, arn)
        for key in self._get_param("TagKeys") or []:
            tags(self).get(arn, {}).pop(key, None)
        return "{}"

    for fn in (register_scalable_target, deregister_scalable_target, list_tags_for_resource, tag_resource,
               untag_resource):
        setattr(ApplicationAutoScalingResponse, fn.__name__, fn)
