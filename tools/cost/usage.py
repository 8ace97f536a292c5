"""The usage each stack is priced at: from its config where the config says it, stated here where not.

Records per minute and their size come from `StreamConfig`: production at the stated peak, held all
month (an upper bound for traffic-driven items); a dev environment at a tenth of it. The rest are this
project's own measurements or plain assumptions, each named so a reader can redo the arithmetic.
"""
from __future__ import annotations

from stacks.config import WorkloadConfig
from tools.cost.estimate import Usage

# The processor logs JSON lines per batch and per heartbeat, EMF metrics included: each task of
# `make demo` writes about 26 KB in its 40 s run at 150 records/s (0.65 KB/s), ~1.7 GB a month.
PROCESSOR_LOG_GB_PER_TASK_MONTH = 1.7
FLOW_LOG_GB_MONTH = 1.0  # private subnets, AWS API traffic only, 60 s aggregation
OTHER_LOG_GB_MONTH = 0.2  # PostgreSQL, Redis slow/engine logs, migrations, Firehose errors: each
IMAGE_GB = 0.15  # the processor image (python slim + dependencies), compressed in ECR
ARCHIVE_COMPRESSION = 4.0  # GZIP on line-delimited JSON records
ARCHIVE_MONTHS = 12  # archive storage is shown after a year of growth
DATABASE_GB = {"retail": 5.0, "factory": 20.0}  # the catalog; a month of readings (older ones are archived)
# A dev environment carries test traffic, not production's: a tenth of the stated peak.
DEV_TRAFFIC_SHARE = 0.1


def usage_of(config: WorkloadConfig) -> Usage:
    return Usage(
        records_per_minute=config.stream.peak_records_per_minute * (1 if config.is_production else DEV_TRAFFIC_SHARE),
        record_bytes=config.stream.average_record_bytes,
        processor_log_gb_month=PROCESSOR_LOG_GB_PER_TASK_MONTH * config.service.desired_count,
        flow_log_gb_month=FLOW_LOG_GB_MONTH,
        other_log_gb_month=OTHER_LOG_GB_MONTH,
        database_gb=DATABASE_GB[config.workload],
        image_gb=IMAGE_GB,
        archive_compression=ARCHIVE_COMPRESSION,
        archive_months=ARCHIVE_MONTHS,
    )
