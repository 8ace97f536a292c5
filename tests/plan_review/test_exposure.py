"""World-open network rules in every spelling: each resource shape that opens a port, each way of
writing "the internet", and the private or narrow ranges that must stay quiet."""
from __future__ import annotations

from typing import Any

import pytest

from tests.plan_review.changes import change, plan
from tools.plan_review import rules
from tools.plan_review.model import Change

# (as written, what the report adds after it): each covers the internet, or most of it.
WORLD_SPELLINGS = [
    ("0.0.0.0/1", "(= 0.0.0.0/1: a public /1, 1/2 of all IPv4 addresses)"),
    ("128.0.0.0/1", "(= 128.0.0.0/1: a public /1, 1/2 of all IPv4 addresses)"),
    ("10.0.0.1/0", "(= 0.0.0.0/0: every IPv4 address)"),
    ("3.0.0.0/8", "(= 3.0.0.0/8: a public /8, 1/256 of all IPv4 addresses)"),
    ("0::/0", "(= ::/0: every IPv6 address)"),
    ("::0/0", "(= ::/0: every IPv6 address)"),
    ("0000:0000::/0", "(= ::/0: every IPv6 address)"),
    ("::ffff:0:0/96", "(= 0.0.0.0/0: every IPv4 address)"),
    ("::ffff:0.0.0.0/97", "(= 0.0.0.0/1: a public /1, 1/2 of all IPv4 addresses)"),
    ("64:ff9b::/96", "(= 0.0.0.0/0: every IPv4 address)"),
    ("::ffff:0:0/95", "(= 0.0.0.0/0: every IPv4 address)"),
    ("2000::/3", "(= 2000::/3: a public /3, 1/8 of all IPv6 addresses)"),
]
# Private, shared, special or merely narrow ranges: not an exposure to the internet.
NOT_WORLD = ["10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10", "192.168.0.0/16", "3.0.0.0/9", "203.0.113.7/32",
             "fc00::/7", "fe80::/10", "2001:db8::/32", "::ffff:10.0.0.0/104", "not-a-cidr"]


def _ingress_shapes(cidr: str) -> list[Change]:
    """Every resource shape that opens an ingress port to `cidr` (IPv4 or IPv6 attribute as fits)."""
    v6 = ":" in cidr
    blocks = {"ipv6_cidr_blocks": [cidr]} if v6 else {"cidr_blocks": [cidr]}
    port: dict[str, Any] = {"protocol": "tcp", "from_port": 22, "to_port": 22}
    return [
        change("aws_security_group", "create", after={"ingress": [{**port, **blocks}], "egress": []}),
        change("aws_default_security_group", "update", {"ingress": []}, {"ingress": [{**port, **blocks}]}),
        change("aws_security_group_rule", "create", after={"type": "ingress", **port, **blocks}),
        change("aws_vpc_security_group_ingress_rule", "create",
               after={"ip_protocol": "tcp", "from_port": 22, "to_port": 22,
                      ("cidr_ipv6" if v6 else "cidr_ipv4"): cidr}),
    ]


@pytest.mark.parametrize(("cidr", "covers"), WORLD_SPELLINGS, ids=[w[0] for w in WORLD_SPELLINGS])
def test_ingress_from_the_internet_is_high_in_every_spelling_and_every_rule_shape(cidr: str, covers: str) -> None:
    for opened in _ingress_shapes(cidr):
        found = rules.assess(plan(opened))
        assert [(r.rule, r.severity, r.reason) for r in found] == [
            ("open-security-group", rules.HIGH, f"ingress from {cidr} {covers} on tcp 22")], opened.type


@pytest.mark.parametrize("cidr", NOT_WORLD)
def test_ingress_from_a_private_or_narrow_range_raises_nothing(cidr: str) -> None:
    for opened in _ingress_shapes(cidr):
        assert rules.assess(plan(opened)) == [], opened.type


def test_the_two_halves_of_the_internet_are_each_reported() -> None:
    halves = change("aws_security_group", "create", after={"ingress": [
        {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/1", "128.0.0.0/1"]}]})
    assert sorted(r.reason for r in rules.assess(plan(halves))) == [
        "ingress from 0.0.0.0/1 (= 0.0.0.0/1: a public /1, 1/2 of all IPv4 addresses) on all ports",
        "ingress from 128.0.0.0/1 (= 128.0.0.0/1: a public /1, 1/2 of all IPv4 addresses) on all ports"]


def test_an_egress_rule_to_the_internet_spelled_otherwise_is_medium() -> None:
    egress = change("aws_vpc_security_group_egress_rule", "create", after={"cidr_ipv6": "0::/0", "ip_protocol": "-1"})
    assert [(r.rule, r.severity, r.reason) for r in rules.assess(plan(egress))] == [
        ("open-security-group", rules.MEDIUM, "egress to 0::/0 (= ::/0: every IPv6 address) on all ports")]


def test_a_rule_already_open_before_the_change_is_not_reported_again() -> None:
    group = {"ingress": [{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/1"]}]}
    assert rules.assess(plan(change("aws_security_group", "update", group, {**group, "description": "x"}))) == []


def test_network_acl_entries_open_to_the_world_are_medium_and_deny_entries_are_not() -> None:
    entry = {"protocol": "-1", "from_port": 0, "to_port": 0, "rule_no": 100, "ipv6_cidr_block": "",
             "cidr_block": "10.0.0.1/0"}
    acl = change("aws_network_acl", "create", after={"ingress": [{**entry, "action": "allow"}],
                                                     "egress": [{**entry, "action": "deny"}]})
    assert [(r.rule, r.severity, r.reason) for r in rules.assess(plan(acl))] == [
        ("open-network-acl", rules.MEDIUM, "network ACL allows ingress from 10.0.0.1/0 (= 0.0.0.0/0: every IPv4 "
                                           "address) on all ports: only security groups stand in the way")]
    rule = change("aws_network_acl_rule", "create", after={"egress": True, "rule_action": "allow", "protocol": "-1",
                                                           "ipv6_cidr_block": "::/0"})
    assert [r.reason for r in rules.assess(plan(rule))] == [
        "network ACL allows egress to ::/0 on all ports: only security groups stand in the way"]
