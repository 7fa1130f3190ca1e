"""Multicast membership for kernel-bypass backends.

With kernel bypass nothing in the host joins the feed's groups, so nothing
sends IGMP and an IGMP-snooping switch stops forwarding the feed (at the
latest after its membership timeout, about 260 s). A bypass backend
therefore takes care of membership itself, in one of two ways:

- ``kernel``: the kernel still owns the port (mlx5's bifurcated driver,
  ef_vi, AF_XDP, AF_PACKET): :class:`KernelMembership` holds one kernel
  socket joined to each group (source-specific where configured) on that
  interface for the run. The kernel then sends the reports, answers the
  querier and, when the sockets close, sends the leaves.
- ``nic``: the port is fully bypassed (vfio-pci): the backend sends IGMPv2 /
  IGMPv3 reports from its own TX queue and answers queries itself (the DPDK
  backend does; see docs/backends/dpdk.md).

:class:`MulticastConfig` is the ``igmp`` field of those backends' configs;
:func:`membership` turns a backend's ``group:port`` filters into the groups
to join. The holder's :meth:`KernelMembership.stats` is the summary's
``backend_stats["igmp"]``.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: setsockopt numbers of <linux/in.h> the socket module does not export everywhere.
MCAST_JOIN_GROUP = 42
MCAST_JOIN_SOURCE_GROUP = 46

#: A group and the sources a source-specific join accepts (empty: any source), host order.
Membership = tuple[int, tuple[int, ...]]


def _ipv4(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None


class MulticastConfig(BaseModel):
    """How a bypass backend keeps the switch forwarding its groups.

    :ivar mode: ``auto`` (a kernel socket when the kernel owns the port, else
        ``nic``), ``kernel``, ``nic`` (the backend's own TX queue sends the
        reports; DPDK only) or ``off`` (someone else joins, e.g. a static
        IGMP entry on the switch).
    :ivar version: IGMP version the ``nic`` path speaks; in ``kernel`` mode 2
        forces the interface to IGMPv2 for the run (``force_igmp_version``,
        restored afterwards), 3 leaves the kernel's own choice (IGMPv3, or
        IGMPv2 when a v2 querier is heard).
    :ivar interface: the kernel interface to join on (default: the one the
        backend knows: ef_vi's ``interface``, an ``iface=`` PMD argument).
    :ivar sources: source-specific joins, ``{"group": ["source", ...]}``
        (IGMPv3 only); groups not named join any source.
    :ivar report_source_ip: IPv4 source address of the reports the ``nic``
        path sends (RFC 3376 4.2.13 allows 0.0.0.0 before a host has one).
    :ivar robustness: unsolicited reports sent on join and on leave (RFC 3376 8.1);
        in ``nic`` mode the last IGMPv3 query's QRV takes over while it is not 0.
    :ivar unsolicited_interval_s: the most time between them; each waits a
        random time up to it (RFC 3376 5.1, 8.11).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["auto", "kernel", "nic", "off"] = "auto"
    version: Literal[2, 3] = 3
    interface: str | None = Field(None, min_length=1, max_length=15)
    sources: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    report_source_ip: str = "0.0.0.0"
    robustness: int = Field(2, ge=1, le=10)
    unsolicited_interval_s: float = Field(1.0, gt=0.0, le=60.0)

    @field_validator("sources")
    @classmethod
    def _sources_are_addresses(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for group, srcs in v.items():
            if not _ipv4(group).is_multicast:
                raise ValueError(f"sources: {group} is not a multicast group")
            if not srcs:
                raise ValueError(f"sources: {group} has an empty source list (leave it out to join any source)")
            for s in srcs:
                if _ipv4(s).is_multicast or _ipv4(s).is_unspecified:
                    raise ValueError(f"sources: {s} (for {group}) is not a unicast source address")
        return v

    @field_validator("report_source_ip")
    @classmethod
    def _report_source(cls, v: str) -> str:
        if _ipv4(v).is_multicast:
            raise ValueError(f"report_source_ip {v} is a multicast address")
        return v

    @model_validator(mode="after")
    def _ssm_needs_v3(self) -> "MulticastConfig":
        if self.sources and self.version != 3:
            raise ValueError("source-specific joins (sources) need IGMP version 3")
        return self


def membership(filters: Sequence[str], cfg: MulticastConfig) -> list[Membership]:
    """``(group, sources)`` in host order for each distinct multicast group
    among ``group:port`` filters (unicast and wildcard destinations join
    nothing). A group named in ``cfg.sources`` but in no filter is an error:
    it would be joined for nothing, or the filter was forgotten."""
    groups: list[int] = []
    for f in filters:
        host = f.partition(":")[0]
        if host in ("", "*"):
            continue
        ip = _ipv4(host)
        if ip.is_multicast and int(ip) not in groups:
            groups.append(int(ip))
    named = {int(_ipv4(g)) for g in cfg.sources}
    stray = named - set(groups)
    if stray:
        raise ValueError("igmp.sources names group(s) no filter receives: "
                         + ", ".join(str(ipaddress.IPv4Address(g)) for g in sorted(stray)))
    by_group = {int(_ipv4(g)): tuple(int(_ipv4(s)) for s in srcs) for g, srcs in cfg.sources.items()}
    return [(g, by_group.get(g, ())) for g in groups]


def _sockaddr_in(ip: int) -> bytes:
    """A ``struct sockaddr_storage`` holding an AF_INET address (128 bytes)."""
    return struct.pack("=H2s4s", socket.AF_INET, b"\0\0", struct.pack("!I", ip)).ljust(128, b"\0")


def group_req(ifindex: int, group: int) -> bytes:
    """``struct group_req`` (RFC 3678) for MCAST_JOIN_GROUP: the interface
    index, padding to 8, the group's sockaddr_storage."""
    return struct.pack("=I4x", ifindex) + _sockaddr_in(group)


def group_source_req(ifindex: int, group: int, source: int) -> bytes:
    """``struct group_source_req`` for MCAST_JOIN_SOURCE_GROUP."""
    return struct.pack("=I4x", ifindex) + _sockaddr_in(group) + _sockaddr_in(source)


def _force_version_path(interface: str) -> Path:
    return Path(f"/proc/sys/net/ipv4/conf/{interface}/force_igmp_version")


class KernelMembership:
    """Kernel sockets joined to a backend's groups on one interface, held
    until :meth:`close`. The sockets are never bound, so no datagram is ever
    queued to them: they exist only so that the kernel keeps the membership
    (reports on join, answers to queries, leaves when they close).

    A join the kernel refuses (no such interface, too many memberships:
    ``net.ipv4.igmp_max_memberships``) raises ``OSError`` naming the group
    and interface; the sockets already joined are closed first.
    """

    def __init__(self, interface: str, groups: Sequence[Membership], version: int = 3) -> None:
        self.interface = interface
        self.groups = list(groups)
        self._sockets: list[socket.socket] = []
        self._restore_version: str | None = None
        self.joined = 0
        try:
            self.ifindex = socket.if_nametoindex(interface)
        except OSError:
            raise OSError(f"igmp: no network interface {interface!r} to join the feed's groups on "
                          "(set igmp.interface, or igmp.mode=off if something else joins)") from None
        try:
            if version == 2:
                self._force_v2()
            for group, sources in self.groups:
                self._join(group, sources)
            self.joined = len(self._sockets)
        except BaseException:
            self.close()
            raise

    def _force_v2(self) -> None:
        path = _force_version_path(self.interface)
        old = path.read_text().strip()
        if old != "2":
            path.write_text("2")
            self._restore_version = old

    def _join(self, group: int, sources: tuple[int, ...]) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self._sockets.append(s)
        try:
            if sources:
                for src in sources:
                    s.setsockopt(socket.IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP,
                                 group_source_req(self.ifindex, group, src))
            else:
                s.setsockopt(socket.IPPROTO_IP, MCAST_JOIN_GROUP, group_req(self.ifindex, group))
        except OSError as exc:
            raise OSError(exc.errno, f"igmp: joining {describe((group, sources))} on {self.interface} "
                                     f"failed: {exc.strerror}") from None

    def stats(self) -> dict[str, Any]:
        """The summary's ``igmp`` entry."""
        return {"mode": "kernel", "interface": self.interface, "groups": [describe(m) for m in self.groups],
                "joined": self.joined,
                "version": "2 (forced for the run)" if self._restore_version is not None else "kernel's choice"}

    def close(self) -> None:
        """Leave every group (the kernel sends the leaves) and restore the
        interface's IGMP version. Idempotent."""
        for s in self._sockets:
            s.close()
        self._sockets = []
        if self._restore_version is not None:
            try:
                _force_version_path(self.interface).write_text(self._restore_version)
            except OSError:
                pass  # the interface went away with its setting
            self._restore_version = None


def describe(m: Membership) -> str:
    """``"233.54.12.111"`` or ``"10.0.0.5,10.0.0.6@232.1.1.1"`` (source-specific)."""
    group, sources = m
    g = str(ipaddress.IPv4Address(group))
    return ",".join(str(ipaddress.IPv4Address(s)) for s in sources) + "@" + g if sources else g


def off_stats(reason: str) -> dict[str, Any]:
    """The summary's ``igmp`` entry when nothing is joined, with why."""
    return {"mode": "off", "reason": reason}


def resolve_mode(cfg: MulticastConfig, kernel_owns_port: bool | None, can_send: bool, backend: str) -> str:
    """The mode a backend runs: ``kernel``, ``nic`` or ``off``.

    :param kernel_owns_port: True when the kernel still sees the port's
        IGMP traffic (a netdev whose stack receives the querier's queries),
        False when the backend takes it all (vfio; an AF_XDP queue; mlx5
        without flow isolation), None when there is no network at all (a
        capture replay).
    :param can_send: the backend can send reports from its own TX queue.

    ``kernel`` asked for on a port whose queries the kernel does not see is
    allowed (the reports on join and leave still go out; queries go
    unanswered, so the switch drops the group after its timeout unless
    something else answers): the user's explicit choice.
    """
    if cfg.mode == "off" or kernel_owns_port is None:
        return "off"
    if cfg.mode == "auto":
        return "kernel" if kernel_owns_port else ("nic" if can_send else "kernel")
    if cfg.mode == "nic" and not can_send:
        raise ValueError(f"igmp.mode=nic: the {backend} backend cannot send IGMP itself; the kernel owns its "
                         "port, use igmp.mode=kernel (the default, auto, does)")
    return cfg.mode


def hold_kernel_membership(cfg: MulticastConfig, filters: Sequence[str], interface: str | None,
                           backend: str) -> KernelMembership | None:
    """Join ``filters``' groups from kernel sockets on ``cfg.interface`` or
    ``interface`` for as long as the returned holder is open (None when no
    filter names a multicast group). Errors say which setting to change."""
    groups = membership(filters, cfg)
    if not groups:
        return None
    where = cfg.interface or interface
    if not where:
        raise ValueError(f"igmp: the {backend} backend does not know which kernel interface to join on; "
                         "set igmp.interface (or igmp.mode=off)")
    return KernelMembership(where, groups, cfg.version)


def membership_warning(cfg: MulticastConfig, mode: str, kernel_owns_port: bool | None, backend: str) -> str | None:
    """What the summary should warn about a membership that will not hold:
    kernel joins on a port whose queries the kernel never sees, or IGMPv2
    reports from 0.0.0.0 (only IGMPv3 allows that source)."""
    if mode == "kernel" and kernel_owns_port is False:
        return (f"igmp.mode=kernel on a {backend} port whose IGMP traffic the backend takes: the kernel joins and "
                "leaves, but never sees the querier's queries, so the switch drops the groups after its timeout "
                "(about 260 s) unless something else answers; use igmp.mode=auto (nic)")
    if mode == "nic" and cfg.version == 2 and cfg.report_source_ip == "0.0.0.0":
        return ("igmp.version=2 reports from 0.0.0.0: only IGMPv3 (RFC 3376 4.2.13) allows that source and "
                "queriers may ignore them; set igmp.report_source_ip to the port's address")
    return None


class GroupMembership:
    """What a bypass backend holds for its groups during a run: the mode it
    resolved to and, in ``kernel`` mode, the joined sockets. In ``nic`` mode
    the backend's native side sends the reports; :meth:`stats` then has only
    the mode, for the backend to complete with its counters."""

    def __init__(self, cfg: MulticastConfig, filters: Sequence[str], *, backend: str,
                 kernel_owns_port: bool | None, can_send: bool, interface: str | None) -> None:
        self.mode = resolve_mode(cfg, kernel_owns_port, can_send, backend)
        self.groups = membership(filters, cfg)
        self.reason = ("igmp.mode=off" if cfg.mode == "off" else "a replay: no network behind the port"
                       if kernel_owns_port is None else "no multicast group among the filters")
        self.kernel: KernelMembership | None = None
        if self.mode == "kernel":
            self.kernel = hold_kernel_membership(cfg, filters, interface, backend)
        self.warning = membership_warning(cfg, self.mode, kernel_owns_port, backend) if self.groups else None

    def stats(self) -> dict[str, Any]:
        """The summary's ``igmp`` entry."""
        if self.kernel is not None:
            return self.kernel.stats()
        if self.mode == "nic" and self.groups:
            return {"mode": "nic", "groups": [describe(m) for m in self.groups]}
        return off_stats(self.reason)

    def close(self) -> None:
        """Leave (kernel mode). Idempotent."""
        if self.kernel is not None:
            self.kernel.close()
