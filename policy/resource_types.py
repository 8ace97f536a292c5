"""What the house knows of each Terraform resource type and each AWS service, in one place.

A resource type's row says where its physical name lives and whether it must have one, which
attributes must name the stack's key, what a replacement or delete loses, and why it costs
nothing by itself. The policy check (policy/rules.py), the plan review (tools/plan_review/) and
the cost estimate (tools/cost/) read their answers here; a construct that adds a new type adds
its row. An AWS service's row says which interface endpoints a task in a private subnet calls
it through (pipeline_lib/network.py makes them for the calls a task role is granted) and
whether it uses the stack's key on a caller's behalf (`kms:ViaService`, the key policy in
pipeline_lib/encryption_key.py).

Standard library only: the plan review and the cost estimate start without the provider bindings.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeyRef:
    """An attribute that must name the stack's key, at `path`, when the attribute at `when[0]` is
    `when[1]` (else the resource is not encrypted with a key at all)."""

    path: tuple[str | int, ...]
    when: tuple[tuple[str | int, ...], Any] | None = None


@dataclass(frozen=True)
class ResourceType:
    named: bool = False  # its physical name is set by us, never AWS-generated (policy rule names_carry_the_suffix)
    name_attribute: str = "name"  # where that name lives; "": its name is scoped to a parent, not physical
    encrypted_by: tuple[KeyRef, ...] = ()  # each must name the stack's KMS key (policy rule data_at_rest_uses_the_cmk)
    loses: str = ""  # what a replace or delete destroys (the plan review's stateful-* risks); "": nothing kept
    free: str = ""  # why `make cost` prices it at nothing; "": tools/cost/estimate.py prices it (or says it cannot)


_FREE = "free"
RESOURCE_TYPES: dict[str, ResourceType] = {
    # -- data: what a replacement loses ------------------------------------------------------------------------------
    "aws_kinesis_stream": ResourceType(named=True, loses="the stream and every record it retains",
                                       encrypted_by=(KeyRef(("kms_key_id",), when=(("encryption_type",), "KMS")),)),
    "aws_db_instance": ResourceType(
        named=True, name_attribute="identifier", loses="the database and its data (kept only in snapshots)",
        encrypted_by=(KeyRef(("kms_key_id",), when=(("storage_encrypted",), True)),
                      KeyRef(("performance_insights_kms_key_id",)), KeyRef(("master_user_secret_kms_key_id",)))),
    "aws_rds_cluster": ResourceType(loses="the database cluster and its data"),
    "aws_elasticache_replication_group": ResourceType(
        named=True, name_attribute="replication_group_id", loses="the Redis group and everything cached in it",
        encrypted_by=(KeyRef(("kms_key_id",), when=(("at_rest_encryption_enabled",), "true")),)),
    "aws_elasticache_cluster": ResourceType(loses="the cache cluster and its data"),
    "aws_s3_bucket": ResourceType(named=True, name_attribute="bucket", loses="the bucket and every object in it"),
    "aws_kms_key": ResourceType(loses="the key: data encrypted with it is unreadable once the deletion window ends"),
    "aws_cloudwatch_log_group": ResourceType(named=True, loses="the log group and its log events",
                                             encrypted_by=(KeyRef(("kms_key_id",)),)),
    "aws_secretsmanager_secret": ResourceType(loses="the secret and its versions"),
    "aws_ecr_repository": ResourceType(
        named=True, loses="the repository and its images",
        encrypted_by=(KeyRef(("encryption_configuration", 0, "kms_key"),
                             when=(("encryption_configuration", 0, "encryption_type"), "KMS")),)),
    "aws_backup_vault": ResourceType(named=True, loses="the vault and its recovery points",
                                     encrypted_by=(KeyRef(("kms_key_arn",)),),
                                     free="free: the recovery points are priced with the backup plan"),
    "aws_dynamodb_table": ResourceType(loses="the table and its items"),
    "aws_efs_file_system": ResourceType(loses="the file system and its files"),
    # stores this project does not make, named so a plan of any configuration reviews their loss
    "aws_ebs_volume": ResourceType(loses="the volume and its data"),
    "aws_docdb_cluster": ResourceType(loses="the document database cluster and its data"),
    "aws_neptune_cluster": ResourceType(loses="the graph database cluster and its data"),
    "aws_redshift_cluster": ResourceType(loses="the warehouse and its data"),
    "aws_opensearch_domain": ResourceType(loses="the search domain and its indices"),
    "aws_elasticsearch_domain": ResourceType(loses="the search domain and its indices"),
    "aws_memorydb_cluster": ResourceType(loses="the MemoryDB cluster and its data"),
    "aws_elasticache_serverless_cache": ResourceType(loses="the cache and everything in it"),
    "aws_msk_cluster": ResourceType(loses="the Kafka cluster and every record its topics retain"),
    "aws_mq_broker": ResourceType(loses="the broker and its queued messages"),
    "aws_cognito_user_pool": ResourceType(loses="the user pool and every user in it"),
    "aws_kms_replica_key": ResourceType(loses="the replica key: data encrypted with it in its region is unreadable "
                                              "once the deletion window ends"),
    "aws_glacier_vault": ResourceType(loses="the vault and its archives"),
    "aws_timestream_table": ResourceType(loses="the table and its records"),
    "aws_sqs_queue": ResourceType(loses="the queue and its messages"),
    "aws_sns_topic": ResourceType(named=True, encrypted_by=(KeyRef(("kms_master_key_id",)),),
                                  free="free: under SNS's monthly free tier of a million publishes"),
    "aws_kinesis_firehose_delivery_stream": ResourceType(
        named=True, encrypted_by=(KeyRef(("extended_s3_configuration", "kms_key_arn")),)),
    "aws_s3_bucket_server_side_encryption_configuration": ResourceType(
        encrypted_by=(KeyRef(("rule", 0, "apply_server_side_encryption_by_default", "kms_master_key_id"),
                             when=(("rule", 0, "apply_server_side_encryption_by_default", "sse_algorithm"), "aws:kms")),),
        free=_FREE),
    # -- compute, configuration and monitoring ---------------------------------------------------------------------
    "aws_ecs_cluster": ResourceType(named=True, free=_FREE),
    "aws_ecs_service": ResourceType(named=True),
    "aws_ecs_task_definition": ResourceType(
        named=True, name_attribute="family",
        free="free: a definition; the service's tasks are priced with the service, the migrate task's per run "
             "(minutes a release)"),
    "aws_iam_role": ResourceType(named=True, free=_FREE),
    "aws_iam_role_policy": ResourceType(named=True, free=_FREE),
    "aws_iam_policy": ResourceType(named=True, free=_FREE),
    "aws_iam_role_policy_attachment": ResourceType(free=_FREE),
    "aws_kms_alias": ResourceType(named=True, free=_FREE),
    "aws_cloudwatch_metric_alarm": ResourceType(named=True, name_attribute="alarm_name"),
    "aws_cloudwatch_dashboard": ResourceType(named=True, name_attribute="dashboard_name"),
    "aws_cloudwatch_log_stream": ResourceType(free="free: its events are priced with the log group"),
    "aws_appautoscaling_target": ResourceType(free=_FREE),
    "aws_appautoscaling_policy": ResourceType(named=True, free=_FREE),
    "aws_ecr_lifecycle_policy": ResourceType(free=_FREE),
    "aws_ecr_repository_policy": ResourceType(free=_FREE),
    "aws_db_parameter_group": ResourceType(named=True, free=_FREE),
    "aws_db_subnet_group": ResourceType(named=True, free=_FREE),
    "aws_elasticache_parameter_group": ResourceType(named=True, free=_FREE),
    "aws_elasticache_subnet_group": ResourceType(named=True, free=_FREE),
    "aws_secretsmanager_secret_rotation": ResourceType(free="free: RDS-managed rotation, no Lambda"),
    "aws_sns_topic_policy": ResourceType(free=_FREE),
    "aws_sns_topic_subscription": ResourceType(free="free: notifications under the free tier"),
    "aws_backup_plan": ResourceType(named=True),
    "aws_backup_selection": ResourceType(free=_FREE),
    "aws_backup_vault_lock_configuration": ResourceType(free=_FREE),
    # -- the archive bucket's companions ---------------------------------------------------------------------------
    "aws_s3_bucket_lifecycle_configuration": ResourceType(free="free: its transitions are priced with the bucket"),
    "aws_s3_bucket_ownership_controls": ResourceType(free=_FREE),
    "aws_s3_bucket_policy": ResourceType(free=_FREE),
    "aws_s3_bucket_public_access_block": ResourceType(free=_FREE),
    "aws_s3_bucket_versioning": ResourceType(free=_FREE),
    "aws_s3_bucket_logging": ResourceType(free="free: the log bucket is priced"),
    "aws_s3_bucket_object_lock_configuration": ResourceType(free=_FREE),
    # -- devices (AWS IoT Core) -------------------------------------------------------------------------------------
    # A thing type or policy is replaced only with nothing registered under it: AWS refuses to delete a
    # thing type with things, or a policy attached to certificates (deregister first: docs/iot.md).
    "aws_iot_thing_type": ResourceType(named=True, free="free: IoT bills connections, messages and rule actions "
                                                        "(priced with the topic rule)"),
    "aws_iot_policy": ResourceType(named=True, free="free: a policy; what devices do under it is priced with the rule"),
    "aws_iot_topic_rule": ResourceType(named=True),
    "aws_iot_logging_options": ResourceType(free="free: settings; the log events are priced with AWSIotLogsV2"),
    # -- network ---------------------------------------------------------------------------------------------------
    "aws_security_group": ResourceType(named=True, free=_FREE),
    "aws_vpc": ResourceType(free=_FREE),
    "aws_subnet": ResourceType(free=_FREE),
    "aws_route_table": ResourceType(free=_FREE),
    "aws_route_table_association": ResourceType(free=_FREE),
    "aws_default_security_group": ResourceType(free=_FREE),
    "aws_vpc_security_group_ingress_rule": ResourceType(free=_FREE),
    "aws_vpc_security_group_egress_rule": ResourceType(free=_FREE),
    "aws_flow_log": ResourceType(free="free: its records are priced with its log group"),
    # -- front doors -------------------------------------------------------------------------------------------------
    "aws_api_gateway_rest_api": ResourceType(named=True),  # priced per request (tools/cost/estimate.py)
    "aws_api_gateway_stage": ResourceType(free="free: its requests are priced with its REST API"),
    "aws_api_gateway_deployment": ResourceType(free=_FREE),
    "aws_api_gateway_resource": ResourceType(free=_FREE),
    "aws_api_gateway_method": ResourceType(free=_FREE),
    "aws_api_gateway_method_response": ResourceType(free=_FREE),
    "aws_api_gateway_method_settings": ResourceType(free=_FREE),
    "aws_api_gateway_integration": ResourceType(free="free: its PutRecords calls are priced with the stream"),
    "aws_api_gateway_integration_response": ResourceType(free=_FREE),
    # Its name is scoped to its REST API (letters and digits only), not a physical name: no suffix to carry.
    "aws_api_gateway_model": ResourceType(name_attribute="", free=_FREE),
    "aws_api_gateway_request_validator": ResourceType(free=_FREE),
    "aws_api_gateway_gateway_response": ResourceType(free=_FREE),
    "aws_api_gateway_api_key": ResourceType(
        named=True, free=_FREE,
        loses="the key's value: the supplier holding it is refused (403) until handed another"),
    "aws_api_gateway_usage_plan": ResourceType(named=True, free=_FREE),
    "aws_api_gateway_usage_plan_key": ResourceType(free=_FREE),
    "aws_cloudwatch_log_metric_filter": ResourceType(named=True),  # its metric is priced
    "aws_wafv2_web_acl": ResourceType(named=True),
    "aws_wafv2_web_acl_association": ResourceType(free="free: the web ACL is priced"),
    "aws_wafv2_web_acl_logging_configuration": ResourceType(free="free: its records are priced with its log group"),
    # The catalog read API's internal ALB (priced per hour and LCU, tools/cost/estimate.py); its target group
    # and listener are free. A replaced target group under the same name waits for the old one to go:
    # the API is unreachable for the replacement's minutes.
    "aws_lb": ResourceType(named=True),
    "aws_lb_target_group": ResourceType(named=True, free="free: its traffic is priced with the load balancer"),
    "aws_lb_listener": ResourceType(free="free: its traffic is priced with the load balancer"),
    # The read API's name in the VPC (pipeline_lib/private_name.py): the zone is priced by the month.
    "aws_route53_zone": ResourceType(named=True),
    "aws_route53_record": ResourceType(free="free: alias queries to a load balancer are not charged"),
}
_UNKNOWN = ResourceType()


def resource_type(type_: str) -> ResourceType:
    """The row of `type_`; a type without one has no name to check, no key, nothing kept, no free reason."""
    return RESOURCE_TYPES.get(type_, _UNKNOWN)


def name_attribute(type_: str) -> str:
    return resource_type(type_).name_attribute


def key_references(type_: str, config: Mapping[str, Any]) -> list[Any] | None:
    """The values of `type_`'s key attributes in `config` (None where its condition does not hold:
    not encrypted with a key at all), or None when the type is not encrypted with the stack's key."""
    refs = resource_type(type_).encrypted_by
    if not refs:
        return None
    values = []
    for ref in refs:
        if ref.when is not None and not _same(_at(config, ref.when[0]), ref.when[1]):
            values.append(None)
        else:
            values.append(_at(config, ref.path))
    return values


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        else:
            value = value.get(step) if isinstance(value, Mapping) else None
    return value


def _same(value: Any, expected: Any) -> bool:
    """Booleans as the provider writes them, some as the strings "true"/"false"."""
    if isinstance(expected, bool) or expected in ("true", "false"):
        return str(value).lower() == str(expected).lower()
    return value == expected


@dataclass(frozen=True)
class AwsService:
    """An AWS service, keyed by its IAM action prefix."""

    endpoints: tuple[str, ...] = ()  # the interface endpoints a task in a private subnet calls it through
    via_service: bool = False  # uses the stack's key on a caller's behalf (kms:ViaService in the key policy)
    why: str = ""  # why it has no endpoint, where a task calls it all the same


# In the key policy's order (kms:ViaService), then the services the tasks only call.
AWS_SERVICES: dict[str, AwsService] = {
    "kinesis": AwsService(endpoints=("kinesis-streams",), via_service=True),
    "firehose": AwsService(via_service=True),
    "rds": AwsService(via_service=True),
    "elasticache": AwsService(via_service=True),
    "secretsmanager": AwsService(endpoints=("secretsmanager",), via_service=True),
    "s3": AwsService(via_service=True, why="reached through the VPC's S3 gateway endpoint"),
    "sns": AwsService(endpoints=("sns",), via_service=True),
    "ecr": AwsService(endpoints=("ecr.api", "ecr.dkr"), via_service=True),
    "backup": AwsService(via_service=True),
    "logs": AwsService(endpoints=("logs",)),
    # The only KMS call a task makes itself is ECS Exec's session key (every other service
    # decrypts on its side, through kms:ViaService); ssmmessages is Exec's agent channel.
    "kms": AwsService(endpoints=("kms",)),
    "ssmmessages": AwsService(endpoints=("ssmmessages",)),
    "rds-db": AwsService(why="an IAM database token is signed in the task; the connection goes to the instance"),
}


def via_services() -> tuple[str, ...]:
    """The services the stack's key lets use it on a caller's behalf, in the key policy's order."""
    return tuple(name for name, service in AWS_SERVICES.items() if service.via_service)


def endpoint_action_prefix(endpoint: str) -> str:
    """The IAM action prefix of the service behind an interface endpoint (`ecr.dkr` -> `ecr`)."""
    return next(name for name, service in AWS_SERVICES.items() if endpoint in service.endpoints)
