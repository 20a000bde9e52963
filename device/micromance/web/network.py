"""Who may reach the page at all: only addresses of a home network.

The page changes the unit's settings, so a request routed in from the internet (a forwarded
port, a public IPv6 address) is refused before anything else looks at it.
"""

from __future__ import annotations

import ipaddress

#: Loopback, the private IPv4 ranges, link-local, and IPv6 unique-local and link-local.
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10",
))


def is_private(address: str) -> bool:
    """True for an address of the home network (an IPv4 address mapped into IPv6 counts as
    itself: a dual-stack socket reports ``::ffff:192.168.1.5``)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%wlan0: drop the zone
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in PRIVATE_NETWORKS)
