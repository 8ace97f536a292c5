"""The stream processor that runs in the Fargate tasks of both workloads.

Kinesis -> decode/validate (pure) -> one PostgreSQL transaction per batch holding the
batch's writes *and* its checkpoint -> Redis (cache / detector state) after commit.
"""
