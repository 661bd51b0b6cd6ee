"""Which addresses the outbound policy refuses, and that it connects only where it checked."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from docmail.adapters.outbound import OutboundPolicy, OutboundRefused, internal_kind


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("172.16.3.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.169.254", "a link-local address (where cloud metadata services live)"),
        ("fe80::1", "a link-local address (where cloud metadata services live)"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - an address to classify
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("240.0.0.1", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", "a private address"),  # 6to4 of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused_with_their_kind(address: str, reason: str) -> None:
    assert internal_kind(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    assert OutboundPolicy().refusal(ipaddress.ip_address(address)) is None


def test_an_allowed_network_passes_and_its_neighbours_do_not() -> None:
    policy = OutboundPolicy((ipaddress.ip_network("10.0.0.0/24"),))
    assert policy.refusal(ipaddress.ip_address("10.0.0.25")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:10.0.0.25")) is None
    assert policy.refusal(ipaddress.ip_address("10.0.1.25")) == "a private address"


def test_the_refusal_names_the_host_the_address_and_the_setting() -> None:
    with pytest.raises(OutboundRefused) as refused:
        OutboundPolicy().addresses("10.0.0.5", 25)
    assert refused.value.message == (
        "host 10.0.0.5 is a private address; docmail does not connect to internal networks "
        "unless DOCMAIL_OUTBOUND_ALLOW lists it"
    )
    assert refused.value.transient is False
    error = refused.value.as_validation_error()
    assert (error.status_code, error.field, error.value) == (422, "host", "10.0.0.5")


def test_a_name_with_one_internal_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [("93.184.216.34", 25), ("10.0.0.5", 25)]

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in answers]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(
        OutboundRefused, match=r"host mail\.example\.com \(10\.0\.0\.5\) is a private"
    ):
        OutboundPolicy().connect("mail.example.com", 25, timeout=1)
