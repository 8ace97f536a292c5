"""One test per moto extension (localdev/moto_extensions/), through boto3 against the extended server."""
from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from localdev import moto_extensions
from localdev.access.trust import FIREHOSE
from localdev.kinesis_usage import shard_usage
from localdev.servers import MotoServer
from pipeline_lib.iam import assume_role_policy

REGION = "us-east-1"


@pytest.fixture(scope="module")
def client(emulator: MotoServer) -> Callable[..., object]:
    keys = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}
    # No SDK retries: a throttled call must show here, not be retried away.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return lambda service, region=REGION: boto3.client(service, region_name=region, endpoint_url=emulator.url,
                                                       config=config, **keys)


def name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def test_every_extension_has_a_test_here() -> None:
    source = open(__file__, encoding="utf-8").read()
    untested = [n for n in moto_extensions.EXTENSIONS if f"def test_{n}_" not in source]
    assert not untested


def test_aws_managed_policies_can_be_attached(client: Callable[..., Any]) -> None:
    iam = client("iam")
    role = name()
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    arn = "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]] == [arn]


def test_unimplemented_operations_fail_fast_with_501_naming_the_operation(client: Callable[..., Any]) -> None:
    elasticache = client("elasticache")
    with pytest.raises(ClientError) as raised:
        elasticache.describe_reserved_cache_nodes()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert "describe_reserved_cache_nodes" in str(raised.value)


def test_elasticache_parameter_groups_keep_user_parameters_and_tags(client: Callable[..., Any]) -> None:
    elasticache, group = client("elasticache"), name()
    created = elasticache.create_cache_parameter_group(
        CacheParameterGroupName=group, CacheParameterGroupFamily="redis7", Description="d",
        Tags=[{"Key": "Workload", "Value": "retail"}])["CacheParameterGroup"]
    elasticache.modify_cache_parameter_group(CacheParameterGroupName=group, ParameterNameValues=[
        {"ParameterName": "maxmemory-policy", "ParameterValue": "allkeys-lru"}])
    parameters = elasticache.describe_cache_parameters(CacheParameterGroupName=group, Source="user")["Parameters"]
    assert [(p["ParameterName"], p["ParameterValue"]) for p in parameters] == [("maxmemory-policy", "allkeys-lru")]
    assert elasticache.list_tags_for_resource(ResourceName=created["ARN"])["TagList"] == [
        {"Key": "Workload", "Value": "retail"}]
    elasticache.delete_cache_parameter_group(CacheParameterGroupName=group)
    with pytest.raises(ClientError, match="CacheParameterGroupNotFound"):
        elasticache.describe_cache_parameter_groups(CacheParameterGroupName=group)


def _replication_group(client: Callable[..., Any], group: str) -> None:
    client("elasticache").create_replication_group(
        ReplicationGroupId=group, ReplicationGroupDescription="d", NumCacheClusters=2, Engine="redis",
        CacheNodeType="cache.t4g.small", TransitEncryptionEnabled=True, SecurityGroupIds=["sg-12345678"])


def test_elasticache_replication_group_members_are_clusters_and_delete_removes_them(client: Callable[..., Any]) -> None:
    elasticache, group = client("elasticache"), name()
    _replication_group(client, group)
    members = elasticache.describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"][0]["MemberClusters"]
    for member in members:
        assert elasticache.describe_cache_clusters(CacheClusterId=member)["CacheClusters"][0]["ReplicationGroupId"] == group
    elasticache.delete_replication_group(ReplicationGroupId=group)
    with pytest.raises(ClientError, match="ReplicationGroupNotFound"):
        elasticache.describe_replication_groups(ReplicationGroupId=group)
    with pytest.raises(ClientError, match="CacheClusterNotFound"):
        elasticache.describe_cache_clusters(CacheClusterId=members[0])


def test_elasticache_group_as_created_has_all_nodes_security_groups_and_tls_mode(client: Callable[..., Any]) -> None:
    elasticache, group = client("elasticache"), name()
    _replication_group(client, group)
    described = elasticache.describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"][0]
    assert len(described["MemberClusters"]) == 2
    assert described["TransitEncryptionMode"] == "required"
    primary = elasticache.describe_cache_clusters(CacheClusterId=described["MemberClusters"][0])["CacheClusters"][0]
    assert [g["SecurityGroupId"] for g in primary["SecurityGroups"]] == ["sg-12345678"]


def test_elasticache_subnet_group_delete_removes_it(client: Callable[..., Any]) -> None:
    ec2, elasticache, group = client("ec2"), client("elasticache"), name()
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    elasticache.create_cache_subnet_group(CacheSubnetGroupName=group, CacheSubnetGroupDescription="d",
                                          SubnetIds=[subnet])
    elasticache.delete_cache_subnet_group(CacheSubnetGroupName=group)
    with pytest.raises(ClientError):
        elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=group)


def _plan(client: Callable[..., Any]) -> str:
    return client("backup").create_backup_plan(BackupPlan={"BackupPlanName": name(), "Rules": [
        {"RuleName": "daily", "TargetBackupVaultName": "v"}]}, BackupPlanTags={"Workload": "retail"})["BackupPlanId"]


def test_backup_selections_are_created_read_listed_and_deleted(client: Callable[..., Any]) -> None:
    backup, plan = client("backup"), _plan(client)
    selection = {"SelectionName": "db", "IamRoleArn": "arn:aws:iam::123456789012:role/b",
                 "Resources": ["arn:aws:rds:us-east-1:123456789012:db:x"]}
    selection_id = backup.create_backup_selection(BackupPlanId=plan, BackupSelection=selection)["SelectionId"]
    got = backup.get_backup_selection(BackupPlanId=plan, SelectionId=selection_id)
    assert got["BackupSelection"]["Resources"] == selection["Resources"]
    assert [s["SelectionId"] for s in backup.list_backup_selections(BackupPlanId=plan)["BackupSelectionsList"]] == [
        selection_id]
    backup.delete_backup_selection(BackupPlanId=plan, SelectionId=selection_id)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        backup.get_backup_selection(BackupPlanId=plan, SelectionId=selection_id)


def test_backup_vault_recovery_points_list_empty_and_unknown_vaults_fail(client: Callable[..., Any]) -> None:
    backup, vault = client("backup"), name()
    backup.create_backup_vault(BackupVaultName=vault)
    assert backup.list_recovery_points_by_backup_vault(BackupVaultName=vault)["RecoveryPoints"] == []
    with pytest.raises(ClientError):
        backup.list_recovery_points_by_backup_vault(BackupVaultName=name())


def test_backup_list_tags_path_reads_tags_without_a_trailing_slash(client: Callable[..., Any]) -> None:
    backup, plan = client("backup"), _plan(client)
    arn = backup.get_backup_plan(BackupPlanId=plan)["BackupPlanArn"]
    endpoint = backup.meta.endpoint_url
    request = urllib.request.Request(f"{endpoint}/tags/{arn}", headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=t/20260101/us-east-1/backup/aws4_request, SignedHeaders=host, "
                         "Signature=0"})
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["Tags"] == {"Workload": "retail"}


def _scalable_target(client: Callable[..., Any], tags: dict[str, str]) -> str:
    ecs, cluster, service = client("ecs"), name(), name()
    ecs.create_cluster(clusterName=cluster)
    task = ecs.register_task_definition(family=name(), containerDefinitions=[
        {"name": "c", "image": "i", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=task, desiredCount=0)
    return client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=f"service/{cluster}/{service}", ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1, MaxCapacity=2, Tags=tags)["ScalableTargetARN"]


def test_appautoscaling_tags_are_kept_listed_and_changed(client: Callable[..., Any]) -> None:
    scaling = client("application-autoscaling")
    arn = _scalable_target(client, {"Workload": "factory"})
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Workload": "factory"}
    scaling.tag_resource(ResourceARN=arn, Tags={"Owner": "team"})
    scaling.untag_resource(ResourceARN=arn, TagKeys=["Workload"])
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Owner": "team"}


def test_kms_rotation_period_is_returned(client: Callable[..., Any]) -> None:
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=200)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 200


def test_security_group_rule_descriptions_of_group_and_prefix_list_rules_read_back(client: Callable[..., Any]) -> None:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_security_group(GroupName=name(), Description="a", VpcId=vpc)["GroupId"]
    b = ec2.create_security_group(GroupName=name(), Description="b", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=a, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": b, "Description": "PostgreSQL from processor"}]}])
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [a]}])["SecurityGroupRules"]
    assert [r.get("Description") for r in rules if not r["IsEgress"]] == ["PostgreSQL from processor"]


def _db(client: Callable[..., Any], **extra: Any) -> str:
    identifier = name()
    client("rds").create_db_instance(DBInstanceIdentifier=identifier, DBInstanceClass="db.t4g.medium",
                                     Engine="postgres", MasterUsername="admin_user", ManageMasterUserPassword=True,
                                     AllocatedStorage=20, **extra)
    return identifier


def test_rds_instance_performance_insights_settings_read_back(client: Callable[..., Any]) -> None:
    identifier = _db(client, EnablePerformanceInsights=True, PerformanceInsightsRetentionPeriod=7)
    described = client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    assert described["PerformanceInsightsEnabled"] is True and described["PerformanceInsightsRetentionPeriod"] == 7


def test_rds_instance_default_ca_signs_a_new_instance_unless_it_names_one(client: Callable[..., Any]) -> None:
    rds = client("rds")
    default = rds.describe_db_instances(DBInstanceIdentifier=_db(client))["DBInstances"][0]
    named = rds.describe_db_instances(DBInstanceIdentifier=_db(client, CACertificateIdentifier="rds-ca-ecc384-g1"))
    assert default["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    assert named["DBInstances"][0]["CACertificateIdentifier"] == "rds-ca-ecc384-g1"


def test_rds_parameter_source_is_user_for_parameters_set_by_the_user(client: Callable[..., Any]) -> None:
    rds, group = client("rds"), name()
    rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily="postgres16", Description="d")
    rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    parameters = rds.describe_db_parameters(DBParameterGroupName=group)["Parameters"]
    assert [(p["ParameterName"], p["Source"]) for p in parameters] == [("rds.force_ssl", "user")]


def test_ecs_service_settings_read_back(client: Callable[..., Any]) -> None:
    ecs, cluster = client("ecs"), name()
    ecs.create_cluster(clusterName=cluster)
    task = ecs.register_task_definition(family=name(), containerDefinitions=[
        {"name": "c", "image": "i", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
    service = ecs.create_service(cluster=cluster, serviceName=name(), taskDefinition=task, desiredCount=0,
                                 enableECSManagedTags=True, enableExecuteCommand=False,
                                 availabilityZoneRebalancing="DISABLED", healthCheckGracePeriodSeconds=30)["service"]
    described = ecs.describe_services(cluster=cluster, services=[service["serviceName"]])["services"][0]
    assert described["enableECSManagedTags"] is True and described["enableExecuteCommand"] is False
    assert described["availabilityZoneRebalancing"] == "DISABLED" and described["healthCheckGracePeriodSeconds"] == 30


def test_route53_zone_with_a_vpc_is_private_and_lists_its_vpc(client: Callable[..., Any]) -> None:
    vpc = client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    route53 = client("route53")
    # As the provider asks: a VPC and no HostedZoneConfig.PrivateZone.
    zone = route53.create_hosted_zone(Name=f"{name()}.internal", CallerReference=name(),
                                      VPC={"VPCRegion": REGION, "VPCId": vpc})["HostedZone"]
    described = route53.get_hosted_zone(Id=zone["Id"])
    assert described["HostedZone"]["Config"]["PrivateZone"] is True
    assert [v["VPCId"] for v in described["VPCs"]] == [vpc]
    public = route53.create_hosted_zone(Name=f"{name()}.example", CallerReference=name())["HostedZone"]
    assert route53.get_hosted_zone(Id=public["Id"])["HostedZone"]["Config"]["PrivateZone"] is False


def test_kinesis_tags_at_creation_are_kept(client: Callable[..., Any]) -> None:
    kinesis, stream = client("kinesis"), name()
    kinesis.create_stream(StreamName=stream, ShardCount=1, Tags={"Workload": "retail"})
    assert kinesis.list_tags_for_stream(StreamName=stream)["Tags"] == [{"Key": "Workload", "Value": "retail"}]


def test_kinesis_faithful_resharding_keeps_parent_records_and_routes_to_open_shards(client: Callable[..., Any]) -> None:
    kinesis, stream = client("kinesis"), name()
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.put_record(StreamName=stream, Data=b"before", PartitionKey="k")
    kinesis.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000",
                        NewStartingHashKey=str(2**127))
    kinesis.put_record(StreamName=stream, Data=b"after", PartitionKey="k")

    def data(shard: str) -> list[bytes]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]]

    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]
    assert data(shards[0]) == [b"before"]
    assert sorted(d for s in shards[1:] for d in data(s)) == [b"after"]


def test_secrets_cancel_rotation_without_lambda_turns_rotation_off(client: Callable[..., Any]) -> None:
    identifier = _db(client)
    arn = client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0][
        "MasterUserSecret"]["SecretArn"]
    secrets = client("secretsmanager")
    secrets.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30})
    secrets.cancel_rotate_secret(SecretId=arn)
    assert secrets.describe_secret(SecretId=arn)["RotationEnabled"] is False


def test_managed_secret_rotation_writes_a_new_password_into_the_current_version(client: Callable[..., Any]) -> None:
    identifier = _db(client)
    arn = client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0][
        "MasterUserSecret"]["SecretArn"]
    secrets = client("secretsmanager")
    before = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    secrets.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=True)
    after = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    assert after["username"] == before["username"] and after["password"] != before["password"]


def test_retried_requests_replay_the_first_answer_instead_of_creating_twice(client: Callable[..., Any]) -> None:
    elasticache, group = client("elasticache"), name()

    def same_invocation(request: AWSPreparedRequest, **_: Any) -> None:
        request.headers["amz-sdk-invocation-id"] = f"fixed-{group}"

    elasticache.meta.events.register("before-send.elasticache.CreateReplicationGroup", same_invocation)
    first = elasticache.create_replication_group(ReplicationGroupId=group, ReplicationGroupDescription="d",
                                                 NumCacheClusters=1, Engine="redis")
    again = elasticache.create_replication_group(ReplicationGroupId=group, ReplicationGroupDescription="d",
                                                 NumCacheClusters=1, Engine="redis")
    assert again["ReplicationGroup"]["ReplicationGroupId"] == first["ReplicationGroup"]["ReplicationGroupId"]
    with pytest.raises(ClientError, match="AlreadyExists"):  # a new invocation is a new create
        client("elasticache").create_replication_group(ReplicationGroupId=group, ReplicationGroupDescription="d",
                                                       NumCacheClusters=1, Engine="redis")


# --- Kinesis reads and writes as Kinesis meters them -------------------------------------------------------------


def _stream(client: Callable[..., Any], shards: int = 1) -> tuple[object, str]:
    kinesis, stream = client("kinesis"), name()
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    return kinesis, stream


def _backlog(stream: str, count: int, size: int = 100) -> None:
    """Records put straight into the emulator's model: a backlog without the write limit's wait."""
    from moto.kinesis.models import kinesis_backends

    target = kinesis_backends["123456789012"][REGION].describe_stream(stream_arn=None, stream_name=stream)
    data = base64.b64encode(b"x" * size).decode()
    for i in range(count):
        target.put_record(f"k{i}", None, data)


def _iterator(kinesis: BaseClient, stream: str) -> str:
    return kinesis.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]


def test_kinesis_reads_from_the_position_return_at_most_10000_records_and_say_what_is_left(client: Callable[..., Any]) -> None:
    kinesis, stream = _stream(client)
    _backlog(stream, 10_500)
    first = kinesis.get_records(ShardIterator=_iterator(kinesis, stream))
    assert len(first["Records"]) == 10_000 and first["MillisBehindLatest"] > 0  # a burst, but a backlog
    second = kinesis.get_records(ShardIterator=first["NextShardIterator"], Limit=1000)
    assert len(second["Records"]) == 500 and second["MillisBehindLatest"] == 0
    assert [r["SequenceNumber"] for r in second["Records"]][:2] == ["10001", "10002"]
    kinesis.put_record(StreamName=stream, PartitionKey="k", Data=b"new")
    third = kinesis.get_records(ShardIterator=second["NextShardIterator"])
    assert [r["Data"] for r in third["Records"]] == [b"new"] and third["Records"][0]["SequenceNumber"] == "10501"


def test_kinesis_reads_from_the_position_stop_a_page_at_10_mib(client: Callable[..., Any]) -> None:
    kinesis, stream = _stream(client)
    _backlog(stream, 12, size=1024 * 1024 - 2)  # ~1 MiB each, with the partition key
    page = kinesis.get_records(ShardIterator=_iterator(kinesis, stream))
    assert len(page["Records"]) == 10 and page["MillisBehindLatest"] > 0


def test_kinesis_shard_limits_throttle_the_sixth_read_of_a_shard_within_a_second(client: Callable[..., Any]) -> None:
    kinesis, stream = _stream(client, shards=2)
    iterator = _iterator(kinesis, stream)
    for _ in range(5):
        iterator = kinesis.get_records(ShardIterator=iterator)["NextShardIterator"]
    with pytest.raises(ClientError) as raised:
        kinesis.get_records(ShardIterator=iterator)
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert "Rate exceeded for shard shardId-000000000000" in raised.value.response["Error"]["Message"]
    other = kinesis.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000001",
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    kinesis.get_records(ShardIterator=other)  # another shard has its own budget
    time.sleep(1.05)
    kinesis.get_records(ShardIterator=iterator)  # a second later the shard reads again


def test_kinesis_shard_limits_throttle_reads_until_a_big_read_is_paid_back_at_2_mib_a_second(client: Callable[..., Any]) -> None:
    kinesis, stream = _stream(client)
    _backlog(stream, 6, size=1024 * 1024 - 2)
    page = kinesis.get_records(ShardIterator=_iterator(kinesis, stream))  # 6 MiB: allowed, once
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        kinesis.get_records(ShardIterator=page["NextShardIterator"])
    time.sleep(2.2)  # 4 MiB overdrawn, refilled at 2 MiB/s
    kinesis.get_records(ShardIterator=page["NextShardIterator"])


def test_kinesis_shard_limits_refuse_a_page_limit_above_10000(client: Callable[..., Any]) -> None:
    kinesis, stream = _stream(client)
    with pytest.raises(ClientError, match="InvalidArgumentException"):
        kinesis.get_records(ShardIterator=_iterator(kinesis, stream), Limit=10_001)


def test_kinesis_shard_limits_fail_put_records_entries_beyond_1000_records_a_second(client: Callable[..., Any]) -> None:
    kinesis, stream = _stream(client)
    answers = [kinesis.put_records(StreamName=stream, Records=[{"PartitionKey": f"k{i}", "Data": b"x"}
                                                               for i in range(400)]) for _ in range(3)]
    assert [a["FailedRecordCount"] for a in answers] == [0, 0, 200]
    failed = [r for r in answers[2]["Records"] if "ErrorCode" in r]
    assert {r["ErrorCode"] for r in failed} == {"ProvisionedThroughputExceededException"}
    assert answers[2]["Records"][199]["SequenceNumber"] and "ErrorCode" in answers[2]["Records"][200]
    time.sleep(1.05)
    assert kinesis.put_records(StreamName=stream, Records=[{"PartitionKey": "k", "Data": b"x"}])[
        "FailedRecordCount"] == 0


def test_kinesis_shard_limits_refuse_put_record_beyond_1_mib_a_second(client: Callable[..., Any]) -> None:
    kinesis, stream = _stream(client)
    kinesis.put_record(StreamName=stream, PartitionKey="k", Data=b"x" * (700 * 1024))
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        kinesis.put_record(StreamName=stream, PartitionKey="k", Data=b"x" * (400 * 1024))


def test_kinesis_shard_limits_keep_each_shards_usage(client: Callable[..., Any], emulator: MotoServer) -> None:
    kinesis, stream = _stream(client)
    kinesis.put_records(StreamName=stream, Records=[{"PartitionKey": "k", "Data": b"abc"}] * 3)
    iterator = _iterator(kinesis, stream)
    for _ in range(6):
        try:
            iterator = kinesis.get_records(ShardIterator=iterator)["NextShardIterator"]
        except ClientError:
            pass
    usage = shard_usage(emulator.url, stream)["shardId-000000000000"]
    assert usage == {"get_records": 5, "read_throttled": 1, "records_read": 3, "bytes_read": 12,
                     "peak_reads_per_second": 5, "records_written": 3, "bytes_written": 12, "write_throttled": 0}



def test_cloudwatch_alarms_notify_their_topics_when_their_state_changes(client: Callable[..., Any]) -> None:
    sns, sqs, cloudwatch, alarm = client("sns"), client("sqs"), client("cloudwatch"), name()
    topic = sns.create_topic(Name=name())["TopicArn"]
    queue = sqs.create_queue(QueueName=name())["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    cloudwatch.put_metric_alarm(AlarmName=alarm, MetricName="DeadLetters", Namespace="Pipeline/x", Statistic="Sum",
                                Period=300, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                                AlarmActions=[topic], OKActions=[topic])
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="two poison records")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="still")  # no change, no message
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="quiet again")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
    assert [(b["AlarmName"], b["OldStateValue"], b["NewStateValue"], b["NewStateReason"]) for b in bodies] == [
        (alarm, "OK", "ALARM", "two poison records"), (alarm, "ALARM", "OK", "quiet again")]
    assert json.loads(messages[0]["Body"])["Subject"] == f'ALARM: "{alarm}" in us-east-1'
    assert bodies[0]["Trigger"]["MetricName"] == "DeadLetters"


def _concatenated_json(body: bytes) -> list[dict]:
    """Records as Firehose writes them: JSON objects back to back, no delimiter."""
    decoder, text, found, at = json.JSONDecoder(), body.decode(), [], 0
    while at < len(text):
        record, at = decoder.raw_decode(text, at)
        found.append(record)
    return found


def firehose_role(client: Callable[..., Any], stream_arn: str, bucket: str, *, write: bool = True,
                  key_arn: str = "", trusted_account: str = "") -> str:
    """A delivery stream role, trusting Firehose as the archive's does (with the ExternalId of
    `trusted_account`, by default this one), that reads `stream_arn` and (if `write`) writes `bucket`'s
    objects, encrypted through S3 with `key_arn` if given."""
    iam, role = client("iam"), name()
    account = trusted_account or client("sts").get_caller_identity()["Account"]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=assume_role_policy(FIREHOSE, account_id=account))
    statements = [{"Effect": "Allow", "Action": ["kinesis:DescribeStream", "kinesis:ListShards",
                                                 "kinesis:GetShardIterator", "kinesis:GetRecords"],
                   "Resource": stream_arn}]
    if write:
        statements.append({"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    if key_arn:
        statements.append({"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": key_arn,
                           "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}})
    iam.put_role_policy(RoleName=role, PolicyName="deliver",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return f"arn:aws:iam::123456789012:role/{role}"


def test_firehose_delivers_from_its_kinesis_source_every_record_once_gzip_under_its_prefix_with_its_key(
        client: Callable[..., Any], emulator: MotoServer) -> None:
    import gzip

    kinesis, s3, firehose, kms = client("kinesis"), client("s3"), client("firehose"), client("kms")
    stream, bucket, delivery = name(), name(), name()
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    s3.create_bucket(Bucket=bucket)
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    role = firehose_role(client, stream_arn, bucket, key_arn=key_arn)
    sent = [{"n": n, "id": uuid.uuid4().hex} for n in range(60)]
    for record in sent[:30]:  # some before the delivery stream exists: Firehose starts at the trim horizon
        kinesis.put_record(StreamName=stream, Data=json.dumps(record).encode(), PartitionKey=record["id"])
    firehose.create_delivery_stream(
        DeliveryStreamName=delivery, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role},
        ExtendedS3DestinationConfiguration={
            "RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "records/year=!{timestamp:yyyy}/month=!{timestamp:MM}/",
            "BufferingHints": {"IntervalInSeconds": 2, "SizeInMBs": 1}, "CompressionFormat": "GZIP",
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": key_arn}}})
    for record in sent[30:]:
        kinesis.put_record(StreamName=stream, Data=json.dumps(record).encode(), PartitionKey=record["id"])

    def delivered() -> list[dict]:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return [r for k in keys for r in _concatenated_json(gzip.decompress(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))]

    deadline = time.monotonic() + 20
    while len(delivered()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.5)
    records = delivered()
    assert sorted(r["n"] for r in records) == list(range(60))  # every record, once
    (first, *_) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    now = time.gmtime()
    assert first["Key"].startswith(f"records/year={now.tm_year:04d}/month={now.tm_mon:02d}/{delivery}-1-")
    assert first["Key"].endswith(".gz")
    head = s3.head_object(Bucket=bucket, Key=first["Key"])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn
    # Firehose reads as a shared-throughput consumer: its GetRecords count against each shard's budget
    assert all(u["get_records"] >= 1 for u in shard_usage(emulator.url, stream).values())
    time.sleep(3)
    assert len(delivered()) == len(sent)  # nothing delivered twice on later passes
    firehose.delete_delivery_stream(DeliveryStreamName=delivery)


def test_policy_conditions_on_absent_keys_do_not_match_and_unconditional_denies_still_apply(client: Callable[..., Any]) -> None:
    s3 = client("s3")
    bucket = name()
    s3.create_bucket(Bucket=bucket)
    arn = f"arn:aws:s3:::{bucket}"

    def policy(*statements: dict) -> None:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))

    policy({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
           {"Sid": "DenyOutdatedTls", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"], "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}})
    s3.put_object(Bucket=bucket, Key="a", Body=b"kept")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"kept"
    policy({"Sid": "DenyReads", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/*"})
    with pytest.raises(ClientError, match="403|Forbidden|AccessDenied"):
        s3.get_object(Bucket=bucket, Key="a")


def test_calls_with_a_role_are_authorized_against_its_policies_and_the_key_policy(
        client: Callable[..., Any], emulator: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localdev.access import ACCESS_LOG_ENV
    from localdev.access.report import read, refusals

    log = tmp_path / "access.jsonl"
    monkeypatch.setenv(ACCESS_LOG_ENV, str(log))
    account, region = "123456789012", "eu-west-1"
    kms, kinesis, iam = client("kms", region), client("kinesis", region), client("iam", region)
    via = {"kms:ViaService": f"kinesis.{region}.amazonaws.com"}
    key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:Decrypt",
         "Resource": "*", "Condition": {"StringEquals": {**via, "kms:CallerAccount": account}}}]}))["KeyMetadata"]["Arn"]
    stream = name()
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.start_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId=key)
    kinesis.put_record(StreamName=stream, Data=b"reading", PartitionKey="p")  # plain keys: not checked
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    role = name()
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    read_stream = {"Effect": "Allow", "Action": ["kinesis:GetShardIterator", "kinesis:GetRecords"],
                   "Resource": stream_arn}

    def as_role(*statements: dict) -> Any:
        iam.put_role_policy(RoleName=role, PolicyName="run",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
        keys = client("sts", region).assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}",
                                                 RoleSessionName="task-1")["Credentials"]
        return boto3.client("kinesis", region_name=region, endpoint_url=emulator.url,
                            aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"],
                            aws_session_token=keys["SessionToken"],
                            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))

    def read_once(reader: Any) -> list:
        iterator = reader.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        return reader.get_records(ShardIterator=iterator)["Records"]

    granted = as_role(read_stream, {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key,
                                    "Condition": {"StringEquals": via}})
    assert [r["Data"] for r in read_once(granted)] == [b"reading"]

    no_decrypt = as_role(read_stream)
    with pytest.raises(ClientError) as raised:
        read_once(no_decrypt)
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert (f"is not authorized to perform: kms:Decrypt on resource: {key} (which kinesis:GetRecords needs) "
            "because no identity-based policy allows the kms:Decrypt action") in str(raised.value)

    no_iterator = as_role({**read_stream, "Action": ["kinesis:GetRecords"]})
    with pytest.raises(ClientError, match=f"kinesis:GetShardIterator on resource: {stream_arn} because"):
        read_once(no_iterator)

    entries = read(log)
    assert [(e.action, e.allowed) for e in entries] == [
        ("kinesis:GetShardIterator", True), ("kinesis:GetRecords", True), ("kms:Decrypt", True),
        ("kinesis:GetShardIterator", True), ("kinesis:GetRecords", True), ("kms:Decrypt", False),
        ("kinesis:GetShardIterator", False)]
    assert [line.split(" denied")[0] for line in refusals(entries)] == [
        f"{role}: kms:Decrypt on {key} (for kinesis:GetRecords)", f"{role}: kinesis:GetShardIterator on {stream_arn}"]


def test_firehose_delivers_from_its_kinesis_source_only_what_its_role_may_write(
        client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localdev.access import ACCESS_LOG_ENV
    from localdev.access.report import read, refusals

    monkeypatch.setenv(ACCESS_LOG_ENV, str(tmp_path / "access.jsonl"))
    kinesis, s3, firehose = client("kinesis"), client("s3"), client("firehose")
    stream, bucket, delivery = name(), name(), name()
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    s3.create_bucket(Bucket=bucket)
    role = firehose_role(client, stream_arn, bucket, write=False)
    kinesis.put_record(StreamName=stream, Data=b'{"n": 1}', PartitionKey="p")
    firehose.create_delivery_stream(
        DeliveryStreamName=delivery, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role},
        ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}",
                                            "BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 1}})
    deadline = time.monotonic() + 15
    while not any(e.action == "s3:PutObject" for e in read(tmp_path / "access.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    mine = [e for e in read(tmp_path / "access.jsonl") if e.principal == role]  # one reader serves every stream
    assert {(e.action, e.allowed) for e in mine} == {
        ("sts:AssumeRole", True), ("kinesis:DescribeStream", True), ("kinesis:ListShards", True),
        ("kinesis:GetShardIterator", True), ("kinesis:GetRecords", True), ("s3:PutObject", False)}
    (refused,) = {line.split(" denied")[0].rsplit("/", 1)[0] for line in refusals(mine)}
    assert refused == f"{role.rsplit('/', 1)[-1]}: s3:PutObject on arn:aws:s3:::{bucket}"
    firehose.delete_delivery_stream(DeliveryStreamName=delivery)  # or the reader retries for the rest of the session


def test_firehose_delivers_from_its_kinesis_source_nothing_when_its_role_does_not_trust_it_with_this_account(
        client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localdev.access import ACCESS_LOG_ENV
    from localdev.access.report import read, refusals

    monkeypatch.setenv(ACCESS_LOG_ENV, str(tmp_path / "access.jsonl"))
    kinesis, s3, firehose = client("kinesis"), client("s3"), client("firehose")
    stream, bucket, delivery = name(), name(), name()
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    s3.create_bucket(Bucket=bucket)
    # GIVEN a delivery stream whose role trusts Firehose only with another account's ExternalId
    role = firehose_role(client, stream_arn, bucket, trusted_account="210987654321")
    kinesis.put_record(StreamName=stream, Data=b'{"n": 1}', PartitionKey="p")
    firehose.create_delivery_stream(
        DeliveryStreamName=delivery, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role},
        ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}",
                                            "BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 1}})
    try:
        # WHEN the reader has tried three passes (a second apart; a delivery would flush within 1 s)
        deadline = time.monotonic() + 20
        while sum(e.principal == role for e in read(tmp_path / "access.jsonl")) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        # THEN its AssumeRole is refused, nothing is read or written as the role, and the run would stop on it
        mine = [e for e in read(tmp_path / "access.jsonl") if e.principal == role]
        assert {(e.action, e.allowed) for e in mine} == {("sts:AssumeRole", False)}
        (refused,) = refusals(mine)
        assert refused.startswith(f"{role.rsplit('/', 1)[-1]}: sts:AssumeRole on {role} denied: the role's trust "
                                  "policy does not let firehose.amazonaws.com assume it")
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    finally:
        firehose.delete_delivery_stream(DeliveryStreamName=delivery)


def test_iot_tags_of_thing_types_policies_and_rules_are_kept_listed_changed_and_gone_with_them(
        client: Callable[..., Any]) -> None:
    iot = client("iot")
    kind = iot.create_thing_type(thingTypeName=name(), tags=[{"Key": "Workload", "Value": "factory"}])
    policy = iot.create_policy(policyName=name(), policyDocument='{"Version": "2012-10-17", "Statement": []}',
                               tags=[{"Key": "Workload", "Value": "factory"}])
    rule = name()
    iot.create_topic_rule(ruleName=rule, topicRulePayload={"sql": "SELECT * FROM 'a/b'", "actions": []},
                          tags="Workload=factory&Owner=platform")
    rule_arn = iot.get_topic_rule(ruleName=rule)["ruleArn"]
    for arn in (kind["thingTypeArn"], policy["policyArn"]):
        assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "Workload", "Value": "factory"}]
    assert iot.list_tags_for_resource(resourceArn=rule_arn)["tags"] == [
        {"Key": "Owner", "Value": "platform"}, {"Key": "Workload", "Value": "factory"}]
    iot.tag_resource(resourceArn=rule_arn, tags=[{"Key": "Environment", "Value": "local"}])
    iot.untag_resource(resourceArn=rule_arn, tagKeys=["Owner"])
    assert [t["Key"] for t in iot.list_tags_for_resource(resourceArn=rule_arn)["tags"]] == ["Environment", "Workload"]
    iot.delete_topic_rule(ruleName=rule)
    with pytest.raises(ClientError) as gone:
        iot.list_tags_for_resource(resourceArn=rule_arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_iot_certificates_from_a_csr_are_signed_by_the_local_ca_for_the_csrs_own_key(
        client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from localdev.moto_extensions.iot import IOT_CA_ENV
    from localdev.tls import make_ca
    from tools.sensors import make_key_and_csr

    ca_pem, _ = make_ca(tmp_path / "iot-ca", "test IoT CA")
    monkeypatch.setenv(IOT_CA_ENV, str(tmp_path / "iot-ca"))
    iot = client("iot")
    key_pem, csr_pem = make_key_and_csr("factory-t:line-1:temp-1")
    made = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem.decode(), setAsActive=True)
    certificate = x509.load_pem_x509_certificate(made["certificatePem"].encode())
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()  # the CSR's own key
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    assert certificate.issuer == ca.subject
    ca.public_key().verify(certificate.signature, certificate.tbs_certificate_bytes,  # type: ignore[call-arg]
                           ec.ECDSA(certificate.signature_hash_algorithm))  # type: ignore[arg-type]
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert made["certificateId"] == hashlib.sha256(der).hexdigest()  # AWS's id: SHA-256 of the DER
    assert iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]["status"] == "ACTIVE"
    _, other_csr = make_key_and_csr("x")
    forged = _tampered(other_csr)
    with pytest.raises(ClientError) as refused:
        iot.create_certificate_from_csr(certificateSigningRequest=forged.decode(), setAsActive=True)
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"


def _tampered(csr_pem: bytes) -> bytes:
    """The CSR with its subject changed after signing: its signature no longer verifies."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER))
    at = der.find(b"x")  # the common name "x"
    der[at] = ord("y")
    body = base64.encodebytes(bytes(der))
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + body + b"-----END CERTIFICATE REQUEST-----\n"
