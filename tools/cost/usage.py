"""The usage each stack is priced at: from its config where the config says it, stated here where not.

Records per minute and their size come from `StreamConfig`: production at the stated peak, held all
month (an upper bound for traffic-driven items); a dev environment at a tenth of it. The rest are this
project's own measurements or plain assumptions, each named so a reader can redo the arithmetic.
"""
from __future__ import annotations

import math

from pipeline_lib.naming import Naming
from stacks.config import WorkloadConfig
from tools.cost.estimate import Usage

# The processor logs JSON lines per batch and per heartbeat, EMF metrics included: each task of
# `make demo` writes about 26 KB in its 40 s run at 150 records/s (0.65 KB/s), ~1.7 GB a month.
PROCESSOR_LOG_GB_PER_TASK_MONTH = 1.7
# What a processor task keeps up with, per vCPU: the lowest records/s per processor core `make bench-processor` measured
# (48,000, docs/benchmarks.md), halved for what its emulator does not charge (TLS to Kinesis, PostgreSQL
# across a network). The read API's tasks are sized by its own target tracking (requests_per_task_per_minute).
PROCESSOR_RECORDS_PER_VCPU_SECOND = 24_000
FLOW_LOG_GB_MONTH = 1.0  # private subnets, AWS API traffic only, 60 s aggregation
OTHER_LOG_GB_MONTH = 0.2  # PostgreSQL, Redis slow/engine logs, migrations, Firehose errors: each
IMAGE_GB = 0.15  # the processor image (python slim + dependencies), compressed in ECR
ARCHIVE_COMPRESSION = 4.0  # GZIP on line-delimited JSON records
ARCHIVE_MONTHS = 12  # archive storage is shown after a year of growth
DATABASE_GB = {"retail": 5.0, "factory": 20.0}  # the catalog; a month of readings (older ones are archived)
# A dev environment carries test traffic, not production's: a tenth of the stated peak.
DEV_TRAFFIC_SHARE = 0.1
# Devices: each sensor reads once a second (the stated peak is its sensors' readings), and a reading
# in a device message is ~130 bytes of JSON (event id, kind, value, unit, time; processor/device_messages.py).
SENSOR_READINGS_PER_SECOND = 1.0
DEVICE_READING_BYTES = 130
ENVELOPE_BYTES = 100  # the rule's record around a message: line, sensor, receipt time, keys
# The storefront's catalog reads (a stack with the read API): production at a stated 100 reads a second held
# all month, dev a tenth; a read is ~1.5 KB through the ALB (request headers with the token, a product's JSON).
CATALOG_READS_PER_SECOND = 100.0
CATALOG_BYTES_PER_READ = 1_500
# Each read is a line of the ALB's access logs, ~750 bytes (addresses, timings, request line, user agent, TLS
# cipher, target group and certificate ARNs), in files ELB gzips: about 8:1 on such repetitive lines (assumed).
CATALOG_ACCESS_LOG_LINE_BYTES = 750
ACCESS_LOG_COMPRESSION = 8.0


def usage_of(config: WorkloadConfig) -> Usage:
    share = 1 if config.is_production else DEV_TRAFFIC_SHARE
    readings_per_minute = config.stream.peak_records_per_minute * share
    devices: dict[str, float] = {}
    records_per_minute, record_bytes = readings_per_minute, config.stream.average_record_bytes
    if config.iot is not None:
        # The devices' messages are the stream's records: the rule puts each one, its payload
        # base64-encoded inside the line, sensor and receipt time (pipeline_lib/iot_ingest.py).
        batch = config.iot.readings_per_message
        message_bytes = 16 + batch * DEVICE_READING_BYTES
        devices = {"devices": round(readings_per_minute / 60 / SENSOR_READINGS_PER_SECOND),
                   "device_readings_per_minute": readings_per_minute, "readings_per_message": batch,
                   "device_message_bytes": message_bytes}
        records_per_minute, record_bytes = readings_per_minute / batch, ENVELOPE_BYTES + -(-message_bytes // 3) * 4
    catalog = ({"catalog_reads_per_second": CATALOG_READS_PER_SECOND * share,
                "catalog_bytes_per_read": CATALOG_BYTES_PER_READ,
                "catalog_access_log_bytes_per_read": CATALOG_ACCESS_LOG_LINE_BYTES / ACCESS_LOG_COMPRESSION}
               if config.catalog_api is not None else {})
    naming = Naming(config.workload, config.environment_suffix)
    service = config.service
    processor_tasks = math.ceil(records_per_minute / 60 / (PROCESSOR_RECORDS_PER_VCPU_SECOND * service.cpu / 1024))
    tasks_needed = {naming.name("processor"): processor_tasks}
    if config.catalog_api is not None:
        reads_per_minute = CATALOG_READS_PER_SECOND * share * 60
        tasks_needed[naming.name("catalog-api")] = math.ceil(reads_per_minute / config.catalog_api.requests_per_task_per_minute)
    # The tasks that log: what the traffic needs, but never under the floor autoscaling keeps, nor over one a shard.
    logging_tasks = min(max(processor_tasks, service.min_count), config.stream.max_consumers)
    return Usage(
        **devices,  # type: ignore[arg-type]
        **catalog,  # type: ignore[arg-type]
        records_per_minute=records_per_minute,
        record_bytes=record_bytes,
        tasks_needed=tasks_needed,
        processor_log_gb_month=PROCESSOR_LOG_GB_PER_TASK_MONTH * logging_tasks,
        flow_log_gb_month=FLOW_LOG_GB_MONTH,
        other_log_gb_month=OTHER_LOG_GB_MONTH,
        database_gb=DATABASE_GB[config.workload],
        image_gb=IMAGE_GB,
        archive_compression=ARCHIVE_COMPRESSION,
        archive_months=ARCHIVE_MONTHS,
    )
