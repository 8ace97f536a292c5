"""Route 53: a hosted zone created with a VPC is private."""
from __future__ import annotations

from typing import Any

from localdev.moto_extensions.registry import extension


@extension
def route53_zone_with_a_vpc_is_private() -> None:
    """AWS makes a zone private when CreateHostedZone names a VPC (the provider sends no
    `HostedZoneConfig.PrivateZone`); moto reads only that flag, so it makes a public zone, drops the
    VPC, and the zone plans to add its VPC for ever."""
    from moto.route53.responses import Route53

    create = Route53.create_hosted_zone

    def create_hosted_zone(self: Route53) -> Any:
        if self._get_param("VPC.VPCId"):
            read_flag = self._get_bool_param

            def private_when_named(name: str, if_none: Any = None) -> Any:
                return True if name == "HostedZoneConfig.PrivateZone" else read_flag(name, if_none)

            self._get_bool_param = private_when_named  # this request's handler only
        return create(self)

    Route53.create_hosted_zone = create_hosted_zone
