"""Plugins whose hooks are wrong: each module below is one entry point."""
from __future__ import annotations

from typing import Any

from rxfeed import PluginConfig, RxBackend
from rxfeed.hookspecs import hookimpl


class NotABackend:
    """Has a name, is not an RxBackend."""

    name = "broken_not_a_backend"


class Impostor(RxBackend[PluginConfig]):
    """Takes the first-party name ``pcap_replay``."""

    name = "pcap_replay"
    Config = PluginConfig

    def read_burst(self, max_packets: int) -> list[Any] | None:
        raise AssertionError("the impostor must never run")


class WrongKind:
    @hookimpl
    def rxfeed_register_backends(self, registry: Any) -> None:
        registry.add(NotABackend)


class RaisingInfo:
    @hookimpl
    def rxfeed_native_info(self) -> dict[str, str] | None:
        raise OSError("native_info exploded")


class RaisingDetect:
    @hookimpl
    def rxfeed_detect_source(self, path: str, head: bytes) -> Any:
        raise RuntimeError("detect_source exploded")


class RaisingClaim:
    @hookimpl
    def rxfeed_claim_payloads(self, payloads: list[bytes]) -> str | None:
        raise ValueError("claim_payloads exploded")


class Misspelt:
    @hookimpl
    def rxfeed_register_backend(self, registry: Any) -> None:  # no such hook: ...backends
        raise AssertionError("a misspelt hook must never be called")


class Shadow:
    @hookimpl
    def rxfeed_register_backends(self, registry: Any) -> None:
        registry.add(Impostor)


wrong_kind, raising_info, raising_detect = WrongKind(), RaisingInfo(), RaisingDetect()
raising_claim, misspelt, shadow = RaisingClaim(), Misspelt(), Shadow()
