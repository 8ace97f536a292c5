"""Private network: no internet path at all; AWS APIs are reached through endpoints."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_prefix_list import DataAwsPrefixList
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.account import AccountContext
from pipeline_lib.context import StackContext
from pipeline_lib.log_group import EncryptedLogGroup
from pipeline_lib.settings import NetworkConfig
from policy.resource_types import AWS_SERVICES, endpoint_action_prefix

HTTPS = 443


class Network(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        settings: NetworkConfig,
    ) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        self._context, self._settings = context, settings
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=settings.cidr_block,
            enable_dns_support=True,  # private DNS names of the interface endpoints
            enable_dns_hostnames=True,
            tags={"Name": naming.name("vpc")},
        )
        # Close the default group: nothing may fall back to its allow-all rules.
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id, tags={"Name": naming.name("default-closed")})

        subnet_cidrs = list(ipaddress.ip_network(settings.cidr_block).subnets(new_prefix=20))
        self.route_table = RouteTable(self, "private-routes", vpc_id=self.vpc.id, tags={"Name": naming.name("private")})
        self.private_subnets: list[Subnet] = []
        for index, zone in enumerate(settings.availability_zones):
            subnet = Subnet(
                self,
                f"private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=str(subnet_cidrs[index]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": naming.name(f"private-{zone}")},
            )
            RouteTableAssociation(
                self, f"private-{index}-routes", subnet_id=subnet.id, route_table_id=self.route_table.id
            )
            self.private_subnets.append(subnet)

        self.endpoint_security_group = self.security_group(self, "endpoints-sg", purpose="endpoints",
                                                           description="Interface endpoints: HTTPS from the processor only")
        self.s3_endpoint = VpcEndpoint(
            self,
            "s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{account.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[self.route_table.id],
            policy=iam.document(
                {"Sid": "ThisAccountsBuckets", "Effect": "Allow", "Principal": "*", "Action": "s3:*",
                 "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceAccount": account.account_id}}},
                # ECR serves image layers from its own bucket, through a URL ECR signs: neither the
                # bucket nor the signer is this account's.
                {"Sid": "EcrImageLayers", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": f"arn:{account.partition}:s3:::prod-{account.region}-starport-layer-bucket/*"},
            ),
            tags={"Name": naming.name("s3")},
        )
        self._s3_prefix_list = DataAwsPrefixList(self, "s3-prefix-list", prefix_list_id=self.s3_endpoint.prefix_list_id)
        # Made on request (`serve`): exactly the endpoints of the calls the tasks are granted.
        self.interface_endpoints: dict[str, VpcEndpoint] = {}

        self.flow_log_group = EncryptedLogGroup(
            self, "flow-logs", name=naming.path("vpc-flow-logs"), key=key, retention_in_days=context.log_retention_days
        )
        flow_role = IamRole(
            self,
            "flow-logs-role",
            name=naming.name("flow-logs"),
            assume_role_policy=iam.assume_role_policy("vpc-flow-logs.amazonaws.com", account_id=account.account_id),
        )
        IamRolePolicy(
            self,
            "flow-logs-policy",
            name=naming.name("flow-logs-write"),
            role=flow_role.id,
            policy=iam.document(
                iam.statement(
                    "WriteFlowLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    [self.flow_log_group.arn, f"{self.flow_log_group.arn}:*"],
                ),
                iam.statement("FindTheLogGroup", ["logs:DescribeLogGroups"], ["*"]),
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=flow_role.arn,
            max_aggregation_interval=60,
            tags={"Name": naming.name("flow-log")},
        )

    def serve(self, statements: Iterable[Mapping[str, Any]]) -> None:
        """Interface endpoints for every AWS service a task of the private subnets is granted to
        call itself (`statements`, its roles' policies; policy/resource_types.py names each
        service's endpoints). No NAT: an API without its endpoint is unreachable. So a task
        needing sts or monitoring gets no endpoint for them: credentials come from the ECS
        agent, metrics travel as EMF log lines."""
        for service in iam.direct_services(statements):
            if service not in AWS_SERVICES:
                raise ValueError(f"a task is granted {service}:* calls, and policy/resource_types.py does not say "
                                 "which endpoint reaches that service: add it to AWS_SERVICES")
            for endpoint in AWS_SERVICES[service].endpoints:
                if endpoint not in self.interface_endpoints:
                    self.interface_endpoints[endpoint] = self._interface_endpoint(endpoint)

    def _interface_endpoint(self, service: str) -> VpcEndpoint:
        naming, account = self._context.naming, self._context.account
        return VpcEndpoint(
            self,
            f"endpoint-{service.replace('.', '-')}",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{account.region}.{service}",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=self.subnet_ids[: self._settings.endpoint_zones],
            security_group_ids=[self.endpoint_security_group.id],
            policy=self._endpoint_policy(service, account),
            tags={"Name": naming.name(service.replace(".", "-"))},
        )

    @staticmethod
    def _endpoint_policy(service: str, account: AccountContext) -> str:
        """Without a policy an interface endpoint lets anything in the VPC reach any account's
        resources. This one passes only this account's principals, on this account's resources
        (actions with no resource, such as ecr:GetAuthorizationToken, carry no resource account)."""
        return iam.document({
            "Sid": "ThisAccountOnly", "Effect": "Allow", "Principal": "*", "Action": f"{endpoint_action_prefix(service)}:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account.account_id},
                          "StringEqualsIfExists": {"aws:ResourceAccount": account.account_id}},
        })

    def security_group(self, scope: Construct, id_: str, *, purpose: str, description: str) -> SecurityGroup:
        """A security group of this VPC for what sits on ENIs (tasks, endpoints, instances, cache
        nodes): AWS will not delete one in use, so it is replaced new-first under a name prefix
        (policy/conventions.py, REPLACED_WHILE_IN_USE); a new description replaces it."""
        return SecurityGroup(
            scope,
            id_,
            name_prefix=self._context.naming.prefix(purpose),
            description=description,
            vpc_id=self.vpc.id,
            revoke_rules_on_delete=True,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

    @property
    def subnet_ids(self) -> list[str]:
        return [subnet.id for subnet in self.private_subnets]

    def allow_endpoint_access(self, client: SecurityGroup, *, client_name: str) -> None:
        """Let `client` reach the interface endpoints and S3 (image layers) over HTTPS."""
        VpcSecurityGroupIngressRule(
            self,
            f"endpoints-from-{client_name}",
            security_group_id=self.endpoint_security_group.id,
            referenced_security_group_id=client.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description=f"HTTPS from {client_name}",
        )
        VpcSecurityGroupEgressRule(
            self,
            f"{client_name}-to-endpoints",
            security_group_id=client.id,
            referenced_security_group_id=self.endpoint_security_group.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description="HTTPS to the interface endpoints",
        )
        VpcSecurityGroupEgressRule(
            self,
            f"{client_name}-to-s3",
            security_group_id=client.id,
            prefix_list_id=self._s3_prefix_list.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description="HTTPS to S3 through the gateway endpoint",
        )
