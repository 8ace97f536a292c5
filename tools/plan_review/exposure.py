"""Whether a CIDR a rule opens to is, in effect, the internet, however it is spelled.

`0.0.0.0/0` is not the only way to write it: `0::/0`, `0000:0000::/0`, `10.0.0.1/0` (host bits set,
read as its network), `0.0.0.0/1` plus `128.0.0.0/1`, `::ffff:0:0/96` (every IPv4 address, IPv4-mapped).
Each is read with `ipaddress` and judged by what it covers, not by how it reads.

Threshold: a range is world-open when it is public (not wholly inside a private, shared, loopback,
link-local, multicast or reserved range) and its prefix is IPv4 /8 or shorter (16.7 million addresses or
more: a whole block as IANA hands one to a regional registry), or IPv6 /12 or shorter (the size of a
registry's whole IPv6 allocation). A range of IPv6 that embeds IPv4 (IPv4-mapped `::ffff:0:0/96`, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`) and too narrow to count as IPv6 is judged as
the IPv4 range it embeds (one holding a whole embedding range, `::ffff:0:0/95`, as all of IPv4).
"""
from __future__ import annotations

import ipaddress
from typing import Any

MAX_IPV4_PREFIX = 8
MAX_IPV6_PREFIX = 12
WORLD = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))

# Ranges no internet host has (RFC 6890 and friends): a rule opened to one of them is not a world exposure.
NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"))

# IPv6 ranges that carry IPv4 addresses in their low bits: (prefix, where the IPv4 address starts).
IPV4_EMBEDDED = ((ipaddress.ip_network("::ffff:0:0/96"), 96),  # IPv4-mapped
                 (ipaddress.ip_network("64:ff9b::/96"), 96),  # NAT64 well-known prefix
                 (ipaddress.ip_network("2002::/16"), 16))  # 6to4: the IPv4 address is bits 16-47

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _as_ipv4(network: ipaddress.IPv6Network) -> ipaddress.IPv4Network | None:
    """The IPv4 range an IPv6 range embeds (all of IPv4 when it holds a whole embedding range), or None."""
    for embedding, start in IPV4_EMBEDDED:
        if network.prefixlen < embedding.prefixlen and network.supernet_of(embedding):
            return ipaddress.IPv4Network("0.0.0.0/0")
        if network.subnet_of(embedding):
            covered = min(32, network.prefixlen - start)
            address = (int(network.network_address) >> (128 - start - 32)) & 0xFFFF_FFFF
            return ipaddress.IPv4Network((address, covered), strict=False)
    return None


def world_open(cidr: Any) -> str | None:
    """None unless `cidr` opens to the internet; else how it reads in a report: the CIDR as written, and,
    when that is not plainly `0.0.0.0/0` or `::/0`, what it covers."""
    if not isinstance(cidr, str):
        return None
    try:
        network: Network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return None  # the provider validates CIDRs: an unreadable one is not ours to judge
    if cidr in ("0.0.0.0/0", "::/0"):
        return cidr
    judged = network
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen > MAX_IPV6_PREFIX \
            and (embedded := _as_ipv4(network)) is not None:  # too narrow as IPv6, but holding IPv4
        judged = embedded
    if judged in WORLD:
        return f"{cidr} (= {judged}: every {'IPv4' if judged.version == 4 else 'IPv6'} address)"
    limit = MAX_IPV4_PREFIX if judged.version == 4 else MAX_IPV6_PREFIX
    if judged.prefixlen > limit or any(judged.subnet_of(n) for n in NOT_PUBLIC if n.version == judged.version):
        return None
    return f"{cidr} (= {judged}: a public /{judged.prefixlen}, 1/{2 ** judged.prefixlen} of all " \
           f"IPv{judged.version} addresses)"
