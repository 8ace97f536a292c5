"""A name that resolves inside the stack's VPC only, to a load balancer: a private hosted zone for exactly
that name (associated with the VPC), whose apex is an alias of the balancer.

The zone holds the one name rather than its parent domain, so it sits beside any zone an organisation
already keeps for the parent (Route 53 answers from the most specific private zone that matches) and
goes with the stack: `force_destroy` lets the zone be deleted with its alias in it. The alias
evaluates the balancer's health, but as the name's only record it answers all the same when nothing
behind it is healthy (Route 53 treats a group with no healthy record as all healthy): callers see the
ALB's 503, and the no-healthy-task alarm is what tells.
"""
from __future__ import annotations

from cdktf_cdktf_provider_aws.lb import Lb
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from cdktf_cdktf_provider_aws.route53_zone import Route53Zone, Route53ZoneVpc
from constructs import Construct

from pipeline_lib.context import StackContext
from pipeline_lib.network import Network


class PrivateName(Construct):
    def __init__(self, scope: Construct, id_: str, *, context: StackContext, network: Network, name: str,
                 target: Lb, purpose: str) -> None:
        super().__init__(scope, id_)
        self.name = name
        self.zone = Route53Zone(
            self, "zone", name=name, comment=f"{purpose}: resolves inside {context.naming.name('vpc')} only",
            vpc=[Route53ZoneVpc(vpc_id=network.vpc.id)], force_destroy=True,
            tags={"Name": context.naming.name(f"{purpose}-dns")},
        )
        self.record = Route53Record(
            self, "alias", zone_id=self.zone.zone_id, name=name, type="A",
            alias=Route53RecordAlias(name=target.dns_name, zone_id=target.zone_id, evaluate_target_health=True),
        )
