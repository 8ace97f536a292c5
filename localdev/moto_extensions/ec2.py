"""EC2: security-group rule descriptions."""
from __future__ import annotations

from typing import Any

from localdev.moto_extensions.registry import extension


@extension
def security_group_rule_descriptions() -> None:
    """A rule that references another security group or a prefix list carries its
    description in the group pair or prefix-list entry; moto reads it only from CIDR
    ranges, so such rules come back without a description."""
    import inspect

    from moto.ec2.models.security_groups import SecurityGroupRule

    init = SecurityGroupRule.__init__
    signature = inspect.signature(init)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        given = signature.bind(self, *args, **kwargs).arguments
        self._localdev_description = ((given.get("source_group") or {}).get("Description")
                                      or (given.get("prefix_list_id") or {}).get("Description"))

    SecurityGroupRule.__init__ = __init__
    SecurityGroupRule.description = property(
        lambda self: self.ip_range.get("Description") or getattr(self, "_localdev_description", None))
