"""ElastiCache: parameter groups, replication-group members, subnet-group delete, settings read back."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localdev.moto_extensions.registry import backend_state, extension


def _elasticache_error(code: str, message: str) -> Exception:
    """The HTTP status comes from the error's shape in botocore's model, as for moto's own errors."""
    from moto.elasticache.exceptions import ElastiCacheException

    return type(code, (ElastiCacheException,), {"code": code})(message)


@extension
def elasticache_parameter_groups() -> None:
    """The cache construct creates a Redis parameter group; moto has none of the
    parameter-group operations. Kept: name, family, description, the parameters set
    by the user (what DescribeCacheParameters with Source=user returns), tags."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.elasticache.models import ElastiCacheBackend
    from moto.elasticache.responses import ElastiCacheResponse

    ElastiCacheBackend.__init__ = _widen_arn_regex(ElastiCacheBackend.__init__)

    def groups(self: ElastiCacheResponse) -> dict:
        return backend_state(self.elasticache_backend, "parameter_groups")

    def find(self: ElastiCacheResponse, name: str) -> dict:
        group = groups(self).get(name)
        if group is None:
            raise _elasticache_error("CacheParameterGroupNotFound", f"CacheParameterGroup {name} not found.")
        return group

    def public(group: dict) -> dict:
        return {k: v for k, v in group.items() if k != "Parameters"}

    def create_cache_parameter_group(self: ElastiCacheResponse) -> ActionResult:
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

    def describe_cache_parameter_groups(self: ElastiCacheResponse) -> ActionResult:
        name = self._get_param("CacheParameterGroupName")
        found = [find(self, name)] if name else list(groups(self).values())
        return ActionResult({"CacheParameterGroups": [public(g) for g in found]})

    def modify_cache_parameter_group(self: ElastiCacheResponse) -> ActionResult:
        name = self._get_param("CacheParameterGroupName")
        group = find(self, name)
        for item in self._get_param("ParameterNameValues", []):
            group["Parameters"][item["ParameterName"]] = item.get("ParameterValue")
        return ActionResult({"CacheParameterGroupName": name})

    def reset_cache_parameter_group(self: ElastiCacheResponse) -> ActionResult:
        name = self._get_param("CacheParameterGroupName")
        group = find(self, name)
        if self._get_bool_param("ResetAllParameters"):
            group["Parameters"].clear()
        for item in self._get_param("ParameterNameValues", []):
            group["Parameters"].pop(item["ParameterName"], None)
        return ActionResult({"CacheParameterGroupName": name})

    def describe_cache_parameters(self: ElastiCacheResponse) -> ActionResult:
        group = find(self, self._get_param("CacheParameterGroupName"))
        source = self._get_param("Source")
        parameters = [
            {"ParameterName": k, "ParameterValue": v, "Source": "user", "DataType": "string", "IsModifiable": True}
            for k, v in sorted(group["Parameters"].items())
        ] if source in (None, "user") else []
        return ActionResult({"Parameters": parameters})

    def delete_cache_parameter_group(self: ElastiCacheResponse) -> EmptyResult:
        name = self._get_param("CacheParameterGroupName")
        find(self, name)
        del groups(self)[name]
        return EmptyResult()

    for fn in (create_cache_parameter_group, describe_cache_parameter_groups, modify_cache_parameter_group,
               reset_cache_parameter_group, describe_cache_parameters, delete_cache_parameter_group):
        setattr(ElastiCacheResponse, fn.__name__, fn)


def _widen_arn_regex(init: Callable[..., None]) -> Callable[..., None]:
    """Tags on parameter groups: moto's ARN check knows clusters, snapshots, subnet groups,
    replication groups and users only."""
    import re

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
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

    def create_replication_group(self: ElastiCacheBackend, *args: Any, **kwargs: Any) -> Any:
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

    def delete_replication_group(self: ElastiCacheBackend, replication_group_id: str, retain_primary_cluster: bool) -> Any:
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

    def delete_cache_subnet_group(self: ElastiCacheResponse) -> EmptyResult:
        name = self._get_param("CacheSubnetGroupName")
        if self.elasticache_backend.cache_subnet_groups.pop(name, None) is None:
            raise CacheSubnetGroupNotFound(name)
        return EmptyResult()

    ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group

@extension
def elasticache_group_as_created() -> None:
    """A non-clustered group gets `NumCacheClusters` nodes (moto makes replicas only from
    ReplicasPerNodeGroup); the member clusters carry the group's security groups (the
    provider reads them from the primary); `TransitEncryptionMode` reads back as AWS
    reports it when transit encryption is on and no mode was given: "required"."""
    from moto.elasticache.models import ReplicationGroup

    init = ReplicationGroup.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
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
