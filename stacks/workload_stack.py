"""One stack per workload: provider, backend, construct wiring and outputs, nothing else."""
from __future__ import annotations

from cdktf import LocalBackend, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from pipeline_lib.account import AccountContext
from pipeline_lib.archive import Archive
from pipeline_lib.backup import DatabaseBackup
from pipeline_lib.cache import Cache
from pipeline_lib.catalog_read_api import CatalogReadApi
from pipeline_lib.context import StackContext
from pipeline_lib.data_stream import DataStream
from pipeline_lib.database import Database
from pipeline_lib.encryption_key import EncryptionKey
from pipeline_lib.incident_topic import IncidentTopic
from pipeline_lib.iot_ingest import IotIngest
from pipeline_lib.iot_logging import IotAccountLogging
from pipeline_lib.migration_task import MigrationTask
from pipeline_lib.monitoring import Monitoring
from pipeline_lib.naming import Naming
from pipeline_lib.network import Network
from pipeline_lib.processor_service import ProcessorService
from pipeline_lib.supplier_api import SupplierApi
from stacks.config import WorkloadConfig
from stacks.state import LocalState, RemoteState, state_for


class WorkloadStack(TerraformStack):
    def __init__(self, scope: Construct, config: WorkloadConfig, state: RemoteState | LocalState | None = None) -> None:
        super().__init__(scope, config.stack_id)
        self._configure_state(state or state_for(config))
        AwsProvider(self, "aws", region=config.region,
                    default_tags=[AwsProviderDefaultTags(tags=config.tags)])

        naming = Naming(config.workload, config.environment_suffix)
        account = AccountContext(self, "account", region=config.region)
        key = EncryptionKey(self, "key", naming=naming, account=account,
                            deletion_window_in_days=config.key_deletion_window_days)
        context = StackContext(naming, account, key, log_retention_days=config.log_retention_days)
        network = Network(self, "network", context=context, settings=config.network)
        stream = DataStream(self, "stream", context=context, settings=config.stream)
        database = Database(self, "database", context=context, network=network, settings=config.database)
        cache = Cache(self, "cache", context=context, network=network, settings=config.cache,
                      auth_secret_name=config.redis_auth_secret_name)
        incidents = IncidentTopic(self, "incidents", context=context, settings=config.incidents) if config.incidents else None
        service = ProcessorService(self, "processor", context=context, network=network, stream=stream,
                                   database=database, cache=cache, settings=config.service, incidents=incidents)
        catalog_api = (CatalogReadApi(self, "catalog-api", context=context, network=network, service=service,
                                      database=database, cache=cache, settings=config.catalog_api,
                                      **{f"{purpose}_secret_name": name
                                         for purpose, name in config.catalog_api_secret_names.items()})
                       if config.catalog_api else None)
        migration = MigrationTask(self, "migration", context=context, service=service, database=database,
                                  settings=config.service, catalog_api=catalog_api)
        archive = Archive(self, "archive", context=context, stream=stream, settings=config.archive)
        DatabaseBackup(self, "backup", context=context, database=database, settings=config.archive)
        supplier_api = (SupplierApi(self, "supplier-api", context=context, stream=stream, settings=config.supplier_api,
                                    metric_namespace=service.metric_namespace)
                        if config.supplier_api else None)
        devices = IotIngest(self, "iot", context=context, stream=stream, settings=config.iot) if config.iot else None
        if config.iot and config.iot.account_logging:
            IotAccountLogging(self, "iot-logging", context=context, settings=config.iot)
        watched = [stream, service, database, cache, archive, *filter(None, [supplier_api, catalog_api, devices])]
        monitoring = Monitoring(self, "monitoring", context=context, watched=watched,
                                thresholds=config.alarms, subscriptions=config.alert_subscriptions)

        outputs = {
            "stream_name": stream.name,
            "stream_arn": stream.arn,
            "kms_key_arn": key.arn,
            "cluster_name": service.cluster.name,
            "service_name": service.service.name,
            "ecr_repository_url": service.repository.repository_url,
            "db_endpoint": database.endpoint,
            "db_port": database.port,
            "db_name": database.name,
            "db_secret_arn": database.secret_arn,
            "redis_endpoint": cache.endpoint,
            "redis_port": cache.port,
            "redis_auth_secret_arn": cache.auth_secret.arn,
            "archive_bucket_name": archive.bucket_name,
            "archive_delivery_stream_name": archive.firehose.name,
            "alerts_topic_arn": monitoring.topic.arn,
            "dashboard_name": monitoring.dashboard.dashboard_name,
            "metrics_namespace": service.metric_namespace,
            # What `aws ecs run-task` needs to run the migration (`python -m tools.release migrate`).
            "migrate_task_family": migration.family,
            "private_subnet_ids": network.subnet_ids,
            "processor_security_group_id": service.security_group.id,
            "stack_region": config.region,
        }
        if incidents is not None:
            outputs["incident_topic_arn"] = incidents.arn
        if supplier_api is not None:
            outputs["supplier_api_url"] = supplier_api.url
            outputs["supplier_api_id"] = supplier_api.api.id
        if catalog_api is not None:
            outputs["catalog_api_url"] = catalog_api.url
            outputs["catalog_api_alb_dns_name"] = catalog_api.load_balancer.dns_name
            outputs["catalog_api_callers_security_group_id"] = catalog_api.callers_security_group.id
            outputs["catalog_api_service_name"] = catalog_api.service.name
            outputs["catalog_api_task_family"] = catalog_api.task_definition.family
        if devices is not None:  # what tools/sensors registers devices with, and the local broker reads
            outputs["iot_thing_type_name"] = devices.thing_type.name
            outputs["iot_policy_name"] = devices.device_policy.name
            outputs["iot_topic_rule_name"] = devices.rule.name
            outputs["iot_rule_error_log_group"] = devices.error_log.name
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)

    def _configure_state(self, state: RemoteState | LocalState) -> None:
        """S3 state with encryption and native locking when a bucket is named; local state otherwise."""
        if isinstance(state, LocalState):
            LocalBackend(self, path=state.path)
            return
        backend = S3Backend(self, bucket=state.bucket, key=state.key, region=state.region, encrypt=True)
        backend.add_override("use_lockfile", True)  # S3-native lock (Terraform >= 1.10)
