"""Every change this project makes to moto, in one place, each with its reason and a test.

moto 5.2 serves most of what the stacks create. Where it lacks an operation the AWS
provider calls, or answers one differently from AWS, an extension below adds or
corrects it in-process, before the emulator's server starts (localdev/emulator.py).
The stacks themselves are never changed for the emulator. Each extension is a
function registered with `@extension`; `apply_all()` applies each once.
Tests: tests/localdev/test_moto_extensions.py, one per extension.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable
from xml.sax.saxutils import escape

EXTENSIONS: dict[str, Callable[[], None]] = {}
_applied: set[str] = set()


def extension(fn: Callable[[], None]) -> Callable[[], None]:
    EXTENSIONS[fn.__name__] = fn
    return fn


def apply_all() -> None:
    for name, fn in EXTENSIONS.items():
        if name not in _applied:
            fn()
            _applied.add(name)


@extension
def aws_managed_policies() -> None:
    """The stacks attach AWS managed policies (AWS Backup's service role policies, RDS
    enhanced monitoring). moto knows them but loads them only when asked."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"


@extension
def unimplemented_operations_fail_fast() -> None:
    """moto answers an operation it lacks with HTTP 500, which the provider retries for
    many minutes, so a gap looks like a hang. 501 is not retried: the apply fails at once
    and the error names the operation."""
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action

    def call_action(self):  # noqa: ANN001, ANN202
        try:
            return original(self)
        except NotImplementedError as error:
            message = f"{error} in moto ({self.service_name}); teach it in localdev/moto_extensions.py"
            if "json" in (self.headers.get("Content-Type") or "") or self.headers.get("X-Amz-Target"):
                body = json.dumps({"__type": "NotImplemented", "message": message})
                return 501, {"Content-Type": "application/json", "x-amzn-ErrorType": "NotImplemented"}, body
            body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>"
                    f"<Message>{escape(message)}</Message></Error></ErrorResponse>")
            return 501, {"Content-Type": "text/xml"}, body

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

    def call_action(self):  # noqa: ANN001, ANN202
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


# --- ElastiCache -------------------------------------------------------------------------------------------------


def _elasticache_error(code: str, message: str):  # noqa: ANN202
    """The HTTP status comes from the error's shape in botocore's model, as for moto's own errors."""
    from moto.elasticache.exceptions import ElastiCacheException

    return type(code, (ElastiCacheException,), {"code": code})(message)


def _state(backend, name: str) -> dict:  # noqa: ANN001
    """Per-backend (account, region) storage for what moto itself does not keep."""
    return backend.__dict__.setdefault(f"_localdev_{name}", {})


@extension
def elasticache_parameter_groups() -> None:
    """The cache construct creates a Redis parameter group; moto has none of the
    parameter-group operations. Kept: name, family, description, the parameters set
    by the user (what DescribeCacheParameters with Source=user returns), tags."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.elasticache.models import ElastiCacheBackend
    from moto.elasticache.responses import ElastiCacheResponse

    ElastiCacheBackend.__init__ = _widen_arn_regex(ElastiCacheBackend.__init__)

    def groups(self) -> dict:  # noqa: ANN001
        return _state(self.elasticache_backend, "parameter_groups")

    def find(self, name: str) -> dict:  # noqa: ANN001
        group = groups(self).get(name)
        if group is None:
            raise _elasticache_error("CacheParameterGroupNotFound", f"CacheParameterGroup {name} not found.")
        return group

    def public(group: dict) -> dict:
        return {k: v for k, v in group.items() if k != "Parameters"}

    def create_cache_parameter_group(self) -> ActionResult:  # noqa: ANN001
        name = self._get_param("CacheParameterGroupName")
        if name in groups(self):
            raise _elasticache_error("CacheParameterGroupAlreadyExists", f"Parameter group {name} already exists.")
        backend = self.elasticache_backend
        arn = f"arn:aws:elasticache:{backend.region_name}:{backend.account_id}:parametergroup:{name}"
        groups(self)[name] = {
            "CacheParameterGroupName": name,
            "CacheParameterGroupFamily": self._get_param("CacheParameterGroupFamily"),
            "Description": self._get_param("Description"),
            "IsGlobal": False,
            "ARN": arn,
            "Parameters": {},
        }
        tags = self._get_param("Tags", [])
        if tags:
            backend.add_tags_to_resource(arn, tags)
        return ActionResult({"CacheParameterGroup": public(groups(self)[name])})

    def describe_cache_parameter_groups(self) -> ActionResult:  # noqa: ANN001
        name = self._get_param("CacheParameterGroupName")
        found = [find(self, name)] if name else list(groups(self).values())
        return ActionResult({"CacheParameterGroups": [public(g) for g in found]})

    def modify_cache_parameter_group(self) -> ActionResult:  # noqa: ANN001
        name = self._get_param("CacheParameterGroupName")
        group = find(self, name)
        for item in self._get_param("ParameterNameValues", []):
            group["Parameters"][item["ParameterName"]] = item.get("ParameterValue")
        return ActionResult({"CacheParameterGroupName": name})

    def reset_cache_parameter_group(self) -> ActionResult:  # noqa: ANN001
        name = self._get_param("CacheParameterGroupName")
        group = find(self, name)
        if self._get_bool_param("ResetAllParameters"):
            group["Parameters"].clear()
        for item in self._get_param("ParameterNameValues", []):
            group["Parameters"].pop(item["ParameterName"], None)
        return ActionResult({"CacheParameterGroupName": name})

    def describe_cache_parameters(self) -> ActionResult:  # noqa: ANN001
        group = find(self, self._get_param("CacheParameterGroupName"))
        source = self._get_param("Source")
        parameters = [
            {"ParameterName": k, "ParameterValue": v, "Source": "user", "DataType": "string", "IsModifiable": True}
            for k, v in sorted(group["Parameters"].items())
        ] if source in (None, "user") else []
        return ActionResult({"Parameters": parameters})

    def delete_cache_parameter_group(self) -> EmptyResult:  # noqa: ANN001
        name = self._get_param("CacheParameterGroupName")
        find(self, name)
        del groups(self)[name]
        return EmptyResult()

    for fn in (create_cache_parameter_group, describe_cache_parameter_groups, modify_cache_parameter_group,
               reset_cache_parameter_group, describe_cache_parameters, delete_cache_parameter_group):
        setattr(ElastiCacheResponse, fn.__name__, fn)


def _widen_arn_regex(init):  # noqa: ANN001, ANN202
    """Tags on parameter groups: moto's ARN check knows clusters, snapshots, subnet groups,
    replication groups and users only."""
    import re

    def __init__(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, N807
        init(self, *args, **kwargs)
        self.arn_regex = re.compile(
            r"^arn:aws:elasticache:.*:[0-9]*:(cluster|snapshot|subnetgroup|replicationgroup|user|parametergroup):.*$")

    return __init__


@extension
def elasticache_replication_group_members() -> None:
    """moto lists a replication group's member cluster ids but creates no cache
    clusters behind them, so the provider's read of `<group>-001` fails; and a deleted
    group stays "deleting" for ever, so destroy never finishes. Here each member is a
    real cache cluster, and delete removes the group and its members (AWS reports
    "deleting" once, then not found)."""
    from moto.elasticache.models import CacheCluster, ElastiCacheBackend

    create, delete = ElastiCacheBackend.create_replication_group, ElastiCacheBackend.delete_replication_group

    def create_replication_group(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        group = create(self, *args, **kwargs)
        zones = kwargs.get("preferred_cache_cluster_azs") or []
        for index, cluster_id in enumerate(group.member_clusters):
            if cluster_id in self.cache_clusters:
                continue
            cluster = CacheCluster(
                account_id=self.account_id, region_name=self.region_name, cache_cluster_id=cluster_id,
                cache_node_type=group.cache_node_type, replication_group_id=group.replication_group_id,
                az_mode=None, preferred_availability_zone=zones[index % len(zones)] if zones else None,
                num_cache_nodes=1, engine=group.engine, engine_version=group.engine_version,
                cache_parameter_group_name=group.cache_parameter_group_name,
                cache_subnet_group_name=group.cache_subnet_group_name,
                transit_encryption_enabled=group.transit_encryption_enabled, network_type=group.network_type,
                ip_discovery=group.ip_discovery, snapshot_name=None,
                preferred_maintenance_window=group.preferred_maintenance_window, port=group.port,
                notification_topic_arn=group.notification_topic_arn,
                auto_minor_version_upgrade=group.auto_minor_version_upgrade,
                snapshot_retention_limit=group.snapshot_retention_limit, snapshot_window=group.snapshot_window,
                auth_token=None, outpost_mode=None, preferred_outpost_arn=None, preferred_availability_zones=None,
                cache_security_group_names=None, security_group_ids=group.security_group_ids, tags=None,
                snapshot_arns=None, preferred_outpost_arns=None, log_delivery_configurations=[],
                cache_node_ids_to_remove=None, cache_node_ids_to_reboot=None)
            cluster.at_rest_encryption_enabled = group.at_rest_encryption_enabled
            cluster.auth_token_enabled = group.auth_token_enabled
            cluster.transit_encryption_mode = group.transit_encryption_mode
            self.cache_clusters[cluster_id] = cluster
        return group

    def delete_replication_group(self, replication_group_id, retain_primary_cluster):  # noqa: ANN001, ANN202
        group = self.replication_groups.get(replication_group_id)
        members = list(group.member_clusters) if group is not None else []  # delete drops the primary from it
        group = delete(self, replication_group_id, retain_primary_cluster)
        for cluster_id in members:
            self.cache_clusters.pop(cluster_id, None)
        del self.replication_groups[replication_group_id]
        return group

    ElastiCacheBackend.create_replication_group = create_replication_group
    ElastiCacheBackend.delete_replication_group = delete_replication_group


@extension
def elasticache_subnet_group_delete() -> None:
    """moto creates cache subnet groups but cannot delete them."""
    from moto.core.responses import EmptyResult
    from moto.elasticache.exceptions import CacheSubnetGroupNotFound
    from moto.elasticache.responses import ElastiCacheResponse

    def delete_cache_subnet_group(self) -> EmptyResult:  # noqa: ANN001
        name = self._get_param("CacheSubnetGroupName")
        if self.elasticache_backend.cache_subnet_groups.pop(name, None) is None:
            raise CacheSubnetGroupNotFound(name)
        return EmptyResult()

    ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group


# --- AWS Backup --------------------------------------------------------------------------------------------------


@extension
def backup_selections() -> None:
    """The database backup assigns the DB instance to a backup plan; moto has plans and
    vaults but no selections. Create, get, list and delete, stored per plan."""
    import json
    import uuid

    from moto.backup.exceptions import ResourceNotFoundException
    from moto.backup.responses import BackupResponse
    from moto.core.utils import unix_time

    def selections(self) -> dict:  # noqa: ANN001
        return _state(self.backup_backend, "selections")

    def path_ids(self) -> tuple[str, str | None]:  # noqa: ANN001
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        plan_id = parts[parts.index("plans") + 1]
        selection_id = parts[-1] if parts[-1] != "selections" else None
        return plan_id, selection_id

    def create_backup_selection(self) -> str:  # noqa: ANN001
        plan_id, _ = path_ids(self)
        self.backup_backend.get_backup_plan(plan_id, None)  # not found → ResourceNotFoundException
        body = json.loads(self.body or "{}")
        selection_id = str(uuid.uuid4())
        record = {"SelectionId": selection_id, "BackupPlanId": plan_id, "CreationDate": unix_time(),
                  "CreatorRequestId": body.get("CreatorRequestId"), "BackupSelection": body["BackupSelection"]}
        selections(self)[selection_id] = record
        return json.dumps({k: record[k] for k in ("SelectionId", "BackupPlanId", "CreationDate")})

    def found(self) -> dict:  # noqa: ANN001
        plan_id, selection_id = path_ids(self)
        record = selections(self).get(selection_id)
        if record is None or record["BackupPlanId"] != plan_id:
            raise ResourceNotFoundException(f"Selection {selection_id} of plan {plan_id} not found")
        return record

    def get_backup_selection(self) -> str:  # noqa: ANN001
        return json.dumps(found(self))

    def delete_backup_selection(self) -> str:  # noqa: ANN001
        del selections(self)[found(self)["SelectionId"]]
        return "{}"

    def list_backup_selections(self) -> str:  # noqa: ANN001
        plan_id, _ = path_ids(self)
        listed = [{"SelectionId": r["SelectionId"], "SelectionName": r["BackupSelection"].get("SelectionName"),
                   "BackupPlanId": plan_id, "CreationDate": r["CreationDate"],
                   "IamRoleArn": r["BackupSelection"].get("IamRoleArn")}
                  for r in selections(self).values() if r["BackupPlanId"] == plan_id]
        return json.dumps({"BackupSelectionsList": listed})

    for fn in (create_backup_selection, get_backup_selection, delete_backup_selection, list_backup_selections):
        setattr(BackupResponse, fn.__name__, fn)


# --- Application Auto Scaling ------------------------------------------------------------------------------------


@extension
def appautoscaling_tags() -> None:
    """The provider reads a scalable target's tags after creating it; moto ignores the
    Tags of RegisterScalableTarget and has no tagging operations."""
    import json

    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    def tags(self) -> dict:  # noqa: ANN001
        return _state(self.applicationautoscaling_backend, "tags")

    register = ApplicationAutoScalingResponse.register_scalable_target
    deregister = ApplicationAutoScalingResponse.deregister_scalable_target

    def register_scalable_target(self) -> str:  # noqa: ANN001
        answer = register(self)
        given = self._get_param("Tags")
        if given:
            tags(self).setdefault(json.loads(answer)["ScalableTargetARN"], {}).update(given)
        return answer

    def deregister_scalable_target(self) -> str:  # noqa: ANN001
        backend = self.applicationautoscaling_backend
        key = (self._get_param("ServiceNamespace"), self._get_param("ResourceId"), self._get_param("ScalableDimension"))
        arns = [t.arn for t in backend.describe_scalable_targets(key[0], [key[1]], key[2])]
        answer = deregister(self)
        for arn in arns:
            tags(self).pop(arn, None)
        return answer

    def known(self, arn: str) -> None:  # noqa: ANN001
        from moto.applicationautoscaling.exceptions import AWSValidationException

        backend = self.applicationautoscaling_backend
        if not any(t.arn == arn for by_id in backend.targets.values() for t in by_id.values()):
            raise AWSValidationException(f"No scalable target found for {arn}")

    def list_tags_for_resource(self) -> str:  # noqa: ANN001
        arn = self._get_param("ResourceARN")
        known(self, arn)
        return json.dumps({"Tags": tags(self).get(arn, {})})

    def tag_resource(self) -> str:  # noqa: ANN001
        arn = self._get_param("ResourceARN")
        known(self, arn)
        tags(self).setdefault(arn, {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self) -> str:  # noqa: ANN001
        arn = self._get_param("ResourceARN")
        known(self, arn)
        for key in self._get_param("TagKeys") or []:
            tags(self).get(arn, {}).pop(key, None)
        return "{}"

    for fn in (register_scalable_target, deregister_scalable_target, list_tags_for_resource, tag_resource,
               untag_resource):
        setattr(ApplicationAutoScalingResponse, fn.__name__, fn)


# --- Convergence: attributes moto accepts but does not give back -------------------------------------------------
# Without these, `terraform plan` right after an apply shows changes: the provider reads
# back less than it sent and plans to set it again.


@extension
def elasticache_group_as_created() -> None:
    """A non-clustered group gets `NumCacheClusters` nodes (moto makes replicas only from
    ReplicasPerNodeGroup); the member clusters carry the group's security groups (the
    provider reads them from the primary); `TransitEncryptionMode` reads back as AWS
    reports it when transit encryption is on and no mode was given: "required"."""
    from moto.elasticache.models import ReplicationGroup

    init = ReplicationGroup.__init__

    def __init__(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, N807
        if kwargs.get("cluster_mode") in (None, "disabled") and not kwargs.get("replicas_per_node_group"):
            clusters = kwargs.get("num_cache_clusters") or 1
            kwargs["replicas_per_node_group"] = clusters - 1
        init(self, *args, **kwargs)
        if self.transit_encryption_enabled and not self.transit_encryption_mode:
            self.transit_encryption_mode = "required"

    ReplicationGroup.__init__ = __init__

    from moto.elasticache.models import CacheCluster

    CacheCluster.security_groups = property(
        lambda self: [{"SecurityGroupId": group_id, "Status": "active"} for group_id in self.security_group_ids])


@extension
def kms_rotation_period() -> None:
    """EnableKeyRotation takes RotationPeriodInDays (default 365) and
    GetKeyRotationStatus returns it; moto drops it, and the key plans a change for ever."""
    import json

    from moto.kms.responses import KmsResponse

    enable, status = KmsResponse.enable_key_rotation, KmsResponse.get_key_rotation_status

    def periods(self) -> dict:  # noqa: ANN001
        return _state(self.kms_backend, "rotation_periods")

    def enable_key_rotation(self) -> str:  # noqa: ANN001
        answer = enable(self)
        key_id = self.kms_backend.get_key_id(self._get_param("KeyId"))
        periods(self)[key_id] = int(self._get_param("RotationPeriodInDays") or 365)
        return answer

    def get_key_rotation_status(self) -> str:  # noqa: ANN001
        answer = json.loads(status(self))
        key_id = self.kms_backend.get_key_id(self._get_param("KeyId"))
        answer["KeyId"] = key_id
        if answer.get("KeyRotationEnabled"):
            answer["RotationPeriodInDays"] = periods(self).get(key_id, 365)
        return json.dumps(answer)

    KmsResponse.enable_key_rotation = enable_key_rotation
    KmsResponse.get_key_rotation_status = get_key_rotation_status


@extension
def security_group_rule_descriptions() -> None:
    """A rule that references another security group or a prefix list carries its
    description in the group pair or prefix-list entry; moto reads it only from CIDR
    ranges, so such rules come back without a description."""
    import inspect

    from moto.ec2.models.security_groups import SecurityGroupRule

    init = SecurityGroupRule.__init__
    signature = inspect.signature(init)

    def __init__(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, N807
        init(self, *args, **kwargs)
        given = signature.bind(self, *args, **kwargs).arguments
        self._localdev_description = ((given.get("source_group") or {}).get("Description")
                                      or (given.get("prefix_list_id") or {}).get("Description"))

    SecurityGroupRule.__init__ = __init__
    SecurityGroupRule.description = property(
        lambda self: self.ip_range.get("Description") or getattr(self, "_localdev_description", None))


@extension
def rds_instance_performance_insights() -> None:
    """Performance Insights settings are accepted and dropped by moto's DB instances."""
    from moto.rds.models import RDSBackend

    # request parameter → attribute DescribeDBInstances reads
    keys = {"enable_performance_insights": "performance_insights_enabled",
            "performance_insights_kms_key_id": "performance_insights_kms_key_id",
            "performance_insights_retention_period": "performance_insights_retention_period"}
    create, modify = RDSBackend.create_db_instance, RDSBackend.modify_db_instance

    def keep(database, db_kwargs: dict) -> None:  # noqa: ANN001
        for key, attribute in keys.items():
            if key in db_kwargs:
                setattr(database, attribute, db_kwargs[key])
        if getattr(database, "performance_insights_enabled", False):
            database.performance_insights_retention_period = getattr(
                database, "performance_insights_retention_period", None) or 7

    def create_db_instance(self, db_kwargs):  # noqa: ANN001, ANN202
        picked = {k: db_kwargs.pop(k) for k in keys if k in db_kwargs}
        database = create(self, db_kwargs)
        keep(database, picked)
        return database

    def modify_db_instance(self, db_instance_identifier, db_kwargs):  # noqa: ANN001, ANN202
        picked = {k: db_kwargs.pop(k) for k in keys if k in db_kwargs}
        database = modify(self, db_instance_identifier, db_kwargs)
        keep(database, picked)
        return database

    RDSBackend.create_db_instance = create_db_instance
    RDSBackend.modify_db_instance = modify_db_instance


@extension
def rds_parameter_source() -> None:
    """DescribeDBParameters omits `Source`; the provider keeps only parameters whose
    source is "user", so every parameter the stack sets looked missing (a permanent diff)."""
    from moto.rds.models import DBParameterGroup

    init = DBParameterGroup.__init__
    update = DBParameterGroup.update_parameters

    def label(group) -> None:  # noqa: ANN001
        for parameter in group.parameters.values():
            parameter.setdefault("Source", "user")

    def __init__(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, N807
        init(self, *args, **kwargs)
        label(self)

    def update_parameters(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        result = update(self, *args, **kwargs)
        label(self)
        return result

    DBParameterGroup.__init__ = __init__
    DBParameterGroup.update_parameters = update_parameters


@extension
def ecs_service_settings() -> None:
    """ECS services keep enableECSManagedTags, enableExecuteCommand and
    availabilityZoneRebalancing (AWS's default for a new service: ENABLED)."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    create, update = EC2ContainerServiceResponse.create_service, EC2ContainerServiceResponse.update_service
    settings = {"enableECSManagedTags": "enable_ecs_managed_tags", "enableExecuteCommand": "enable_execute_command",
                "availabilityZoneRebalancing": "availability_zone_rebalancing"}

    def keep(self, answer, creating: bool):  # noqa: ANN001, ANN202
        service = answer.result["service"]
        for param, attribute in settings.items():
            value = self._get_param(param)
            if value is not None:
                setattr(service, attribute, value)
            elif creating:
                setattr(service, attribute, "ENABLED" if param == "availabilityZoneRebalancing" else False)
        return answer

    EC2ContainerServiceResponse.create_service = lambda self: keep(self, create(self), True)
    EC2ContainerServiceResponse.update_service = lambda self: keep(self, update(self), False)


@extension
def kinesis_tags_at_creation() -> None:
    """CreateStream's Tags were dropped, so the first plan after an apply re-tagged the stream."""
    from moto.kinesis.responses import KinesisResponse

    create = KinesisResponse.create_stream

    def create_stream(self):  # noqa: ANN001, ANN202
        answer = create(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return answer

    KinesisResponse.create_stream = create_stream


@extension
def backup_list_tags_path() -> None:
    """ListTags is `GET /tags/{arn}/`; moto takes the ARN from the next-to-last path
    segment, which is wrong when the client leaves the trailing slash off (the Go SDK
    does), so every backup plan and vault read back with no tags."""
    import json
    from urllib.parse import unquote

    from moto.backup.responses import BackupResponse

    def list_tags(self) -> str:  # noqa: ANN001
        arn = unquote(self.path.split("?")[0].split("/tags/", 1)[1].rstrip("/"))
        return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=arn)})

    BackupResponse.list_tags = list_tags


# --- Destroy -----------------------------------------------------------------------------------------------------


@extension
def secrets_cancel_rotation_without_lambda() -> None:
    """The database secret is RDS-managed: AWS rotates it without a Lambda, and
    CancelRotateSecret turns rotation off. moto demands a rotation Lambda ARN, so
    destroying the rotation resource failed."""
    from moto.secretsmanager.responses import SecretsManagerResponse

    cancel = SecretsManagerResponse.cancel_rotate_secret

    def cancel_rotate_secret(self) -> str:  # noqa: ANN001
        secret_id = self._get_param("SecretId")
        backend = self.backend
        if backend._is_valid_identifier(secret_id):
            secret = backend.secrets[secret_id]
            if not getattr(secret, "rotation_lambda_arn", None) and not secret.is_deleted():
                secret.rotation_enabled = False
                return secret.to_short_dict()
        return cancel(self)

    SecretsManagerResponse.cancel_rotate_secret = cancel_rotate_secret


@extension
def backup_vault_recovery_points() -> None:
    """Destroying a vault with force_destroy lists its recovery points first; moto has
    no route for that. The emulator never takes backups, so every vault is empty."""
    import json

    from moto.backup import urls
    from moto.backup.responses import BackupResponse

    def list_recovery_points_by_backup_vault(self) -> str:  # noqa: ANN001
        name = self.path.split("?")[0].split("/backup-vaults/", 1)[1].split("/")[0]
        self.backup_backend.describe_backup_vault(name)  # not found → ResourceNotFoundException
        return json.dumps({"RecoveryPoints": []})

    for pattern in ("{0}/backup-vaults/(?P<name>[^/]+)/recovery-points$",  # the Go SDK's form
                    "{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/$"):  # botocore's
        urls.url_paths[pattern] = BackupResponse.dispatch
    BackupResponse.list_recovery_points_by_backup_vault = list_recovery_points_by_backup_vault


@extension
def managed_secret_rotation() -> None:
    """RDS rotates the master secret it manages itself, without a Lambda: a new version
    with a new password becomes AWSCURRENT. moto, lacking a Lambda, moves AWSCURRENT to
    an empty version, so the secret can no longer be read. Here a Lambda-less rotation of
    a service-managed secret writes the new password into the new version."""
    import json
    import secrets as random_secrets

    from moto.secretsmanager.models import SecretsManagerBackend

    rotate = SecretsManagerBackend.rotate_secret

    def rotate_secret(self, secret_id, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        secret = self.secrets[secret_id] if self._is_valid_identifier(secret_id) else None
        managed = secret is not None and getattr(secret, "owning_service", None) and not (
            kwargs.get("rotation_lambda_arn") or getattr(secret, "rotation_lambda_arn", None))
        before = secret.secret_string if managed else None
        answer = rotate(self, secret_id, *args, **kwargs)
        if managed and before:
            current = secret.versions[secret.default_version_id]
            if current.get("secret_string") is None:
                value = json.loads(before)
                value["password"] = random_secrets.token_urlsafe(24)
                current["secret_string"] = secret.secret_string = json.dumps(value)
        return answer

    SecretsManagerBackend.rotate_secret = rotate_secret


# --- Kinesis -----------------------------------------------------------------------------------------------------


@extension
def kinesis_faithful_resharding() -> None:
    """Measured on moto 5 (tests/processor/test_resilience.py): SplitShard moves the
    parent's records into the children, and PutRecord keeps routing keys to the closed
    parent (the first shard whose hash range matches, open or not). Kinesis keeps a closed
    parent's records in the parent and routes new records to open shards only, which is
    what "parents drained before children" relies on."""
    from moto.kinesis import models

    models.Stream.get_shard_for_key = _route_to_open_shards(models.Stream.get_shard_for_key)
    models.Stream.split_shard = _split_keeping_parent_records(models.Stream.split_shard)


def _route_to_open_shards(original):  # noqa: ANN001, ANN202
    def get_shard_for_key(self, partition_key: str, explicit_hash_key: str):  # noqa: ANN001, ANN202
        shard = original(self, partition_key, explicit_hash_key)  # validates the key, first match wins
        if shard is None or shard.is_open:
            return shard
        if explicit_hash_key:
            hashed = int(explicit_hash_key)
        else:
            hashed = int(hashlib.md5(partition_key.encode()).hexdigest(), 16)
        return next((s for s in self.shards.values() if s.is_open and s.starting_hash <= hashed < s.ending_hash),
                    None)

    return get_shard_for_key


def _split_keeping_parent_records(original):  # noqa: ANN001, ANN202
    def split_shard(self, shard_to_split: str, new_starting_hash_key: str) -> None:  # noqa: ANN001
        parent = self.shards[shard_to_split]
        kept = OrderedDict(parent.records)
        original(self, shard_to_split, new_starting_hash_key)
        for shard in self.shards.values():  # undo the move into the children
            if shard.parent == parent.shard_id:
                shard.records = OrderedDict()
        parent.records = kept

    return split_shard
