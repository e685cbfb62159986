"""Where webhooks may go: the operator's allowlist (docs/webhooks.md).

`webhooks.allow_hosts` lists hostnames (`hooks.example.internal`, `*.example.internal` for any
sub-domain) and addresses or networks (`10.20.0.7`, `10.20.0.0/16`, `fd00::/8`). Empty means no
webhook may be registered or delivered.

A destination is allowed when its host is an allowed name, or when it is an IP literal inside an
allowed network, or when it is any other name and *every* address it resolves to is inside an
allowed network. The check runs when an endpoint is registered and again on every connection the
delivery worker opens (the worker connects to the address it checked, so a DNS answer that changes
between the check and the connection cannot redirect a delivery: no DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class NotAllowed(Exception):
    """A webhook URL or destination address the operator has not allowed."""


def _ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _hostname(text: str) -> str:
    return text.strip().rstrip(".").lower()


@dataclass(frozen=True)
class AllowList:
    names: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Parse `webhooks.allow_hosts`; raises ValueError naming a malformed entry."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if "/" in entry or _ip(entry) is not None:
                try:
                    networks.append(ipaddress.ip_network(entry.split("%", 1)[0], strict=False))
                except ValueError:
                    raise ValueError(
                        f"webhooks.allow_hosts: {entry!r} is not an address or network"
                    ) from None
                continue
            host = _hostname(entry)
            label = host[2:] if host.startswith("*.") else host
            if (
                not label
                or any(not part or len(part) > 63 for part in label.split("."))
                or not all(c.isalnum() or c in "-." for c in label)
            ):
                raise ValueError(f"webhooks.allow_hosts: {entry!r} is not a hostname, address or network")
            if host.startswith("*."):
                suffixes.append("." + label)
            else:
                names.add(host)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    @property
    def empty(self) -> bool:
        return not (self.names or self.suffixes or self.networks)

    def name_allowed(self, host: str) -> bool:
        host = _hostname(host)
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def address_allowed(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses a delivery to `host` may connect to; raises NotAllowed otherwise.

        Resolves the name (blocking). The caller must connect to one of the returned addresses,
        not resolve the name again.
        """
        if self.empty:
            raise NotAllowed("no webhook destinations are allowed on this appliance (webhooks.allow_hosts)")
        literal = _ip(host.strip("[]"))
        if literal is not None:
            if not self.address_allowed(literal):
                raise NotAllowed(f"{literal} is not in webhooks.allow_hosts")
            return [str(literal)]
        try:
            infos = socket.getaddrinfo(_hostname(host), port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise NotAllowed(f"{host} does not resolve") from None
        found: list[str] = []
        for info in infos:
            text = str(info[4][0])
            if text not in found:
                found.append(text)
        if not found:
            raise NotAllowed(f"{host} does not resolve")
        if self.name_allowed(host):
            return found
        for text in found:
            address = _ip(text)
            if address is None or not self.address_allowed(address):
                raise NotAllowed(f"{host} resolves to {text}, which is not in webhooks.allow_hosts")
        return found


def check_url(url: str, allow: AllowList, *, allow_http: bool) -> tuple[str, str, int]:
    """Validate a receiver URL's shape and scheme; returns (scheme, host, port).

    Raises NotAllowed with a message for partners. Does not resolve the host (see `addresses`).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise NotAllowed("url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        if scheme == "http":
            raise NotAllowed("url must use https (this appliance does not allow http receivers)")
        raise NotAllowed("url must be an https URL")
    if not parts.hostname:
        raise NotAllowed("url has no host")
    if parts.username is not None or parts.password is not None:
        raise NotAllowed("url must not carry credentials")
    if parts.fragment:
        raise NotAllowed("url must not carry a fragment")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)
