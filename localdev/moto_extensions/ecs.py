"""ECS: service settings read back."""
from __future__ import annotations

from typing import Any

from localdev.moto_extensions.registry import extension


@extension
def ecs_service_settings() -> None:
    """ECS services keep enableECSManagedTags, enableExecuteCommand, availabilityZoneRebalancing
    (AWS's default for a new service: ENABLED) and healthCheckGracePeriodSeconds (a service behind a load
    balancer, the catalog read API; AWS's default: 0)."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    create, update = EC2ContainerServiceResponse.create_service, EC2ContainerServiceResponse.update_service
    settings = {"enableECSManagedTags": "enable_ecs_managed_tags", "enableExecuteCommand": "enable_execute_command",
                "availabilityZoneRebalancing": "availability_zone_rebalancing",
                "healthCheckGracePeriodSeconds": "health_check_grace_period_seconds"}
    defaults = {"availabilityZoneRebalancing": "ENABLED", "healthCheckGracePeriodSeconds": 0}

    def keep(self: EC2ContainerServiceResponse, answer: Any, creating: bool) -> Any:
        service = answer.result["service"]
        for param, attribute in settings.items():
            value = self._get_param(param)
            if value is not None:
                setattr(service, attribute, value)
            elif creating:
                setattr(service, attribute, defaults.get(param, False))
        return answer

    EC2ContainerServiceResponse.create_service = lambda self: keep(self, create(self), True)
    EC2ContainerServiceResponse.update_service = lambda self: keep(self, update(self), False)
