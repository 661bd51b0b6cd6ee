"""Where a company may make docmail connect: public addresses only, unless the installation
allows more.

Company admins choose the hosts docmail connects to (an account's SMTP server, an SES
``endpoint_url``). Without a policy they could aim the server at its own loopback,
the private network around it or the cloud metadata service, and read the answers
(open, closed, silent; the greeting). :class:`OutboundPolicy` resolves the host,
refuses it if *any* address it resolves to is internal, and connects only to the
addresses it checked, so a DNS answer that changes between the check and the
connection (rebinding) cannot slip an internal address in. TLS still verifies the
host name: callers wrap the socket with the name, not the address.

``DOCMAIL_OUTBOUND_ALLOW`` (``Settings.outbound_allow``) lists networks that are
allowed anyway, e.g. a mail relay on 10.0.0.25; the demo and the tests allow
loopback, where their mail servers listen.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from docmail.errors import PermanentDeliveryError, ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SETTING = "DOCMAIL_OUTBOUND_ALLOW"

_CARRIER_NAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(PermanentDeliveryError):
    """The host is internal and the installation does not allow it; retrying will not help."""

    def __init__(self, message: str, *, field: str, host: str) -> None:
        super().__init__(message)
        self.field, self.value, self.host = field, host, host

    def as_validation_error(self) -> ValidationError:
        """The same refusal as an input error (422) for the admin who set or tests the host."""
        return ValidationError(self.message, field=self.field, value=self.host)


def internal_kind(address: Address) -> str | None:
    """Why ``address`` is not a public one ("a private address"...), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or _nat64(address)
        if embedded is not None:
            return internal_kind(embedded)
        if address.teredo is not None:
            return "a Teredo tunnel address"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (where cloud metadata services live)"),
        (address.is_multicast, "a multicast address"),
        (address in _CARRIER_NAT, "a carrier-grade NAT address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for flagged, reason in checks if flagged), None)


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _bare(host: str) -> str:
    """``[::1]`` as people write IPv6 hosts in URLs and forms, without the brackets."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@dataclass(frozen=True)
class OutboundPolicy:
    """Public addresses, plus the networks in ``allow``."""

    allow: tuple[Network, ...] = ()

    def refusal(self, address: Address) -> str | None:
        """Why docmail must not connect to ``address``, or None when it may."""
        if any(address in network for network in self.allow):
            return None
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in network for network in self.allow):
            return None
        return internal_kind(address)

    def addresses(self, host: str, port: int, field: str = "host") -> list[tuple[Any, ...]]:
        """Resolve ``host`` and return its ``getaddrinfo`` entries, all of them allowed.

        Raises :class:`OutboundRefused` when any address is refused (an attacker's DNS
        may mix a public address with an internal one), ``socket.gaierror`` when the
        name does not resolve.
        """
        name = _bare(host)
        found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        for entry in found:
            address = ipaddress.ip_address(str(entry[4][0]).split("%", 1)[0])
            reason = self.refusal(address)
            if reason is not None:
                shown = host if str(address) == name else f"{host} ({address})"
                raise OutboundRefused(
                    f"host {shown} is {reason}; docmail does not connect to internal "
                    f"networks unless {SETTING} lists it",
                    field=field,
                    host=host,
                )
        return found

    def check(self, host: str, port: int, field: str = "host") -> None:
        """Raise :class:`OutboundRefused` for an internal host; an unknown name passes here
        (connecting will report it)."""
        try:
            self.addresses(host, port, field)
        except socket.gaierror:
            return

    def connect(
        self,
        host: str,
        port: int,
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
        field: str = "host",
    ) -> socket.socket:
        """A TCP connection to one of the checked addresses of ``host`` (in DNS order)."""
        last: OSError | None = None
        for family, kind, proto, _name, sockaddr in self.addresses(host, port, field):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last or OSError(f"no address to connect to for {host}")
