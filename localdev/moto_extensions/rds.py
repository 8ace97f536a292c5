"""RDS: Performance Insights settings and the parameter `Source` read back."""
from __future__ import annotations

from typing import Any

from localdev.moto_extensions.registry import extension


@extension
def rds_instance_performance_insights() -> None:
    """Performance Insights settings are accepted and dropped by moto's DB instances."""
    from moto.rds.models import RDSBackend

    # request parameter → attribute DescribeDBInstances reads
    keys = {"enable_performance_insights": "performance_insights_enabled",
            "performance_insights_kms_key_id": "performance_insights_kms_key_id",
            "performance_insights_retention_period": "performance_insights_retention_period"}
    create, modify = RDSBackend.create_db_instance, RDSBackend.modify_db_instance

    def keep(database: Any, db_kwargs: dict) -> None:
        for key, attribute in keys.items():
            if key in db_kwargs:
                setattr(database, attribute, db_kwargs[key])
        if getattr(database, "performance_insights_enabled", False):
            database.performance_insights_retention_period = getattr(
                database, "performance_insights_retention_period", None) or 7

    def create_db_instance(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        picked = {k: db_kwargs.pop(k) for k in keys if k in db_kwargs}
        database = create(self, db_kwargs)
        keep(database, picked)
        return database

    def modify_db_instance(self: RDSBackend, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> Any:
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

    def label(group: Any) -> None:
        for parameter in group.parameters.values():
            parameter.setdefault("Source", "user")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        label(self)

    def update_parameters(self: DBParameterGroup, *args: Any, **kwargs: Any) -> Any:
        result = update(self, *args, **kwargs)
        label(self)
        return result

    DBParameterGroup.__init__ = __init__
    DBParameterGroup.update_parameters = update_parameters


# What RDS signs a new instance's server certificate with when CreateDBInstance names no CA: the
# default for new DB instances in the commercial regions ("Certificate authorities" in the RDS
# User Guide's SSL/TLS page). moto answers "rds-ca-default", which names no CA.
AWS_DEFAULT_CA = "rds-ca-rsa2048-g1"


@extension
def rds_instance_default_ca() -> None:
    """A new instance is signed by AWS's default CA, not moto's "rds-ca-default". The provider
    (5.100.0) sends no CACertificateIdentifier with CreateDBInstance: it compares the answer's CA
    with the configured one and, when they differ, modifies the instance and waits for it again.
    On AWS they match (the stack asks for the default) and the create returns after one wait; on
    moto they never did, which cost every local deploy a second ~80 s of the provider's fixed waits."""
    from moto.rds.models import RDSBackend

    create = RDSBackend.create_db_instance

    def create_db_instance(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        db_kwargs.setdefault("ca_certificate_identifier", AWS_DEFAULT_CA)
        if db_kwargs["ca_certificate_identifier"] is None:
            db_kwargs["ca_certificate_identifier"] = AWS_DEFAULT_CA
        return create(self, db_kwargs)

    RDSBackend.create_db_instance = create_db_instance
