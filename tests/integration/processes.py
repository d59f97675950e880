"""Real processes on loopback for the integration tests and bench/failover.py.

Registrars (``python -m rsplib.registrar.cli``) and echo PEs
(``python -m rsplib.examples.echo_pe``) run with ephemeral ports, the TCP
mapping and short timers. Their logs go to files; the helpers read the bound
addresses and progress from there. Processes are only ever signalled by PID.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from tests.support import REPO, LoggedProcess, free_udp_port, split_address
from tests.transports import TCP_MAPPING, cli_transport

__all__ = [
    "REPO",
    "EchoPe",
    "Process",
    "Registrar",
    "free_udp_port",
    "random_group",
    "split_address",
]

READY_RE = re.compile(
    r"rsp-registrar 0x(?P<id>[0-9a-f]+) ready: ASAP on (?P<asap>[^ ,]+).*?ENRP on (?P<enrp>\S+) "
)
HOME_RE = re.compile(r"home registrar is now (?P<host>[0-9.]+):(?P<port>\d+)")


class Process(LoggedProcess):
    """One child process with its log file."""

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log_text()))


class Registrar(Process):
    def __init__(
        self,
        identifier: int,
        log_dir: Path,
        extra: Sequence[str] = (),
        transport: str = TCP_MAPPING,
    ) -> None:
        args = [
            "--identifier", f"0x{identifier:x}",
            "--asap", "127.0.0.1:0",
            "--enrp", "127.0.0.1:0",
            "--enrp-announce", "off",
            "--transport", cli_transport(transport),
            "--min-address-scope", "loopback",
            "--endpoint-keepalive-interval", "300",
            "--endpoint-keepalive-timeout", "300",
            "--peer-heartbeat-interval", "1000",
            "--mentor-discovery-timeout", "500",
            "--loglevel", "info",
            *extra,
        ]  # fmt: skip
        if "--asap-announce" not in extra:
            args += ["--asap-announce", "off"]
        super().__init__("rsplib.registrar.cli", args, log_dir / f"registrar-{identifier:x}.log")
        self.identifier = identifier
        self.asap: tuple[str, int] = ("", 0)
        self.enrp: tuple[str, int] = ("", 0)

    def ready(self, timeout: float = 15.0) -> Registrar:
        match = self.wait_for(READY_RE, timeout)
        self.asap = split_address(match["asap"])
        self.enrp = split_address(match["enrp"])
        return self

    @property
    def asap_text(self) -> str:
        return f"{self.asap[0]}:{self.asap[1]}"


class EchoPe(Process):
    def __init__(
        self,
        identifier: int,
        log_dir: Path,
        registrars: Sequence[Registrar] = (),
        extra: Sequence[str] = (),
        transport: str = TCP_MAPPING,
    ) -> None:
        args = [
            "--identifier", f"0x{identifier:x}",
            "--transport", cli_transport(transport),
            "--rereginterval", "1000",
            "--registrar-connect-timeout", "1000",
            "--registrar-response-timeout", "1000",
            "--heartbeat-interval", "250",
            "--heartbeat-misses", "2",
            "--loglevel", "info",
            *extra,
        ]  # fmt: skip
        if registrars:
            args += ["--registrar", ",".join(r.asap_text for r in registrars)]
        super().__init__("rsplib.examples.echo_pe", args, log_dir / f"pe-{identifier:x}.log")
        self.identifier = identifier

    def registered(self, timeout: float = 15.0) -> EchoPe:
        self.wait_for(rf"PE 0x{self.identifier:08x} registered", timeout)
        return self

    def homes(self) -> list[tuple[str, int]]:
        """Every home registrar this PE adopted, in order."""
        return [(m["host"], int(m["port"])) for m in HOME_RE.finditer(self.log_text())]


def random_group() -> str:
    """A multicast group in the organisation-local range no other test is likely to use."""
    return f"239.255.{random.randint(1, 254)}.{random.randint(1, 254)}"
