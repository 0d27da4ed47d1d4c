"""Which peers are trusted front-ends: gunicorn's forwarded_allow_ips and proxy_allow_ips."""

import ipaddress
from collections.abc import Iterable

_MAX_REMEMBERED = 1024  # peer addresses whose answer is kept (a front-end's is asked per connection)


class AllowList:
    """Addresses and networks ("10.0.0.1", "10.1.0.0/16", "::1"), or "*" for every peer.

    As in gunicorn, a peer that is not an IP address (a unix socket's) is always allowed: only
    the local front-end can reach it, and the socket's permissions say who that is.
    """

    def __init__(self, items: Iterable[str]) -> None:
        items = [item.strip() for item in items]
        self.allows_all = "*" in items
        self._networks = tuple(ipaddress.ip_network(item) for item in items if item != "*")
        self._answers: dict[str, bool] = {}

    def allows(self, peer: object) -> bool:
        """Whether `peer` (a socket address: (host, port, ...) for TCP, else unix) is allowed."""
        if self.allows_all or not isinstance(peer, tuple):
            return True
        host = str(peer[0])
        answer = self._answers.get(host)
        if answer is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                answer = False
            else:
                # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d; it is a.b.c.d.
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                    address = address.ipv4_mapped
                answer = any(address in network for network in self._networks)
            if len(self._answers) < _MAX_REMEMBERED:
                self._answers[host] = answer
        return answer
