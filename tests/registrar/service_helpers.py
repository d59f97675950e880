"""Helpers for the registrar's real-process tests: registrar processes and ASAP clients.

``RegistrarProcess`` runs ``python -m rsplib.registrar.cli`` on loopback with
ephemeral ports and reads the bound addresses from its "ready" log line.
``AsapClient`` is a small PE/PU speaking ASAP over the TCP mapping through
rsplib.transport and the wire codecs. Run as a script, this module is a PE
process (``python -m tests.registrar.service_helpers pe HOST PORT POOL ID``) that registers
and answers keep-alives until killed, for the SIGSTOP test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from rsplib.transport import ChannelClosed, HeartbeatConfig, MessageChannel, connect
from rsplib.wire.asap import (
    AsapMessage,
    Deregistration,
    DeregistrationResponse,
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
    decode_asap,
    encode_asap,
)
from rsplib.wire.constants import PPID, PolicyType
from rsplib.wire.csp import ComponentGroup, CspReport, component_id, decode_csp
from rsplib.wire.params import PolicyParam, PoolElementParam, TcpTransport
from tests.support import (
    LOOPBACK_REGISTRAR_ARGS,
    REPO,
    LoggedProcess,
    patience,
    split_address,
)
from tests.transports import TCP_MAPPING, cli_transport

READY_RE = re.compile(
    r"rsp-registrar 0x(?P<id>[0-9a-f]+) ready: ASAP on (?P<asap>[^ ,]+)[^(]*\((?P<tr>[\w-]+)\), "
    r"ENRP on (?P<enrp>\S+) "
)


class RegistrarProcess(LoggedProcess):
    """One ``rsp-registrar`` child process; always stopped by PID."""

    def __init__(
        self, args: Sequence[str], log_path: Path, *, open_files: int | None = None
    ) -> None:
        self.args = list(args)
        super().__init__("rsplib.registrar.cli", self.args, log_path, open_files=open_files)
        self.server_id = 0
        self.asap: tuple[str, int] = ("", 0)
        self.enrp: tuple[str, int] = ("", 0)
        self.transport = ""

    def wait_ready(self, timeout: float = 15.0) -> RegistrarProcess:
        timeout = patience(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = READY_RE.search(self.log_text())
            if match:
                self.server_id = int(match["id"], 16)
                self.asap = split_address(match["asap"])
                self.enrp = split_address(match["enrp"])
                self.transport = match["tr"]
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"registrar exited early:\n{self.log_text()}")
            time.sleep(0.05)
        raise AssertionError(f"registrar not ready within {timeout} s:\n{self.log_text()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        return super().stop(timeout)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")


def registrar_args(
    identifier: int,
    *,
    peers: Sequence[tuple[str, int]] = (),
    extra: Sequence[str] = (),
    transport: str = TCP_MAPPING,
) -> list[str]:
    """Loopback, ephemeral ports, no multicast, PE addresses on loopback; the TCP mapping
    unless ``transport`` says otherwise."""
    args = ["--identifier", f"0x{identifier:x}", *LOOPBACK_REGISTRAR_ARGS, "--loglevel", "debug"]
    args += ["--transport", cli_transport(transport)]  # the last --transport counts
    for host, port in peers:
        args += ["--peer", f"{host}:{port}"]
    return args + list(extra)


class ProcessPool:
    """Starts registrars and PE processes and stops every one of them at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.registrars: list[RegistrarProcess] = []
        self.children: list[subprocess.Popen[bytes]] = []

    def registrar(
        self, args: Sequence[str], name: str = "pr", *, open_files: int | None = None
    ) -> RegistrarProcess:
        log_path = self.directory / f"{name}-{len(self.registrars)}.log"
        process = RegistrarProcess(args, log_path, open_files=open_files)
        self.registrars.append(process)
        return process

    def pe_process(
        self, asap: tuple[str, int], pool: bytes, identifier: int
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.registrar.service_helpers",
                "pe",
                asap[0],
                str(asap[1]),
                pool.decode(),
                str(identifier),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
        self.children.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        for registrar in self.registrars:
            registrar.stop()


# ----------------------------------------------------------------------- ASAP client


def make_pe(
    identifier: int,
    *,
    port: int = 40000,
    address: str = "127.0.0.1",
    policy: PolicyParam | None = None,
    life_ms: int = 30_000,
) -> PoolElementParam:
    return PoolElementParam(
        identifier=identifier,
        home_registrar_id=0,
        registration_life=life_ms,
        user_transport=TcpTransport(port=port, addresses=(ipaddress.ip_address(address),)),
        policy=policy or PolicyParam(PolicyType.ROUND_ROBIN),
    )


class AsapClient:
    """A PE and/or PU connection to a registrar (over the TCP mapping unless told).

    A background reader answers Endpoint Keep-Alives for the PEs it registered
    (unless ``answer_keepalives`` is False) and queues everything else.
    """

    def __init__(self, channel: MessageChannel) -> None:
        self.channel = channel
        self.answer_keepalives = True
        self.registered: set[tuple[bytes, int]] = set()
        self.keepalives: list[EndpointKeepAlive] = []
        self.inbox: asyncio.Queue[AsapMessage] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, address: tuple[str, int], *, heartbeat: float = 1.0, transport: str = TCP_MAPPING
    ) -> AsapClient:
        channel = await connect(
            address[0],
            address[1],
            transport=transport,
            heartbeat=HeartbeatConfig(interval=heartbeat, misses=3),
            timeout=5.0,
        )
        return cls(channel)

    async def _read(self) -> None:
        try:
            while True:
                ppid, data = await self.channel.receive()
                if ppid != PPID.ASAP:
                    continue
                msg = decode_asap(data)
                if isinstance(msg, EndpointKeepAlive):
                    self.keepalives.append(msg)
                    if self.answer_keepalives:
                        await self._ack(msg)
                    continue
                self.inbox.put_nowait(msg)
        except ChannelClosed:
            pass
        finally:
            self.closed.set()

    async def _ack(self, ka: EndpointKeepAlive) -> None:
        targets = (
            [(ka.pool_handle, ka.identifier)]
            if ka.identifier is not None
            else [key for key in self.registered if key[0] == ka.pool_handle]
        )
        for pool, identifier in targets:
            if (pool, identifier) in self.registered:
                await self.send(EndpointKeepAliveAck(pool, identifier))

    async def send(self, msg: AsapMessage) -> None:
        await self.channel.send(PPID.ASAP, encode_asap(msg))

    async def send_raw(self, data: bytes, ppid: int = PPID.ASAP) -> None:
        await self.channel.send(ppid, data)

    async def expect(self, kind: type, timeout: float = 3.0) -> AsapMessage:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            msg = await asyncio.wait_for(self.inbox.get(), max(0.0, remaining))
            if isinstance(msg, kind):
                return msg

    async def register(self, pool: bytes, pe: PoolElementParam) -> RegistrationResponse:
        await self.send(Registration(pool, pe))
        response = await self.expect(RegistrationResponse)
        assert isinstance(response, RegistrationResponse)
        if not response.rejected:
            self.registered.add((pool, pe.identifier))
        return response

    async def deregister(self, pool: bytes, identifier: int) -> DeregistrationResponse:
        await self.send(Deregistration(pool, identifier))
        response = await self.expect(DeregistrationResponse)
        assert isinstance(response, DeregistrationResponse)
        self.registered.discard((pool, identifier))
        return response

    async def resolve(self, pool: bytes, items: int | None = None) -> HandleResolutionResponse:
        await self.send(HandleResolution(pool, items))
        response = await self.expect(HandleResolutionResponse)
        assert isinstance(response, HandleResolutionResponse)
        return response

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.channel.close()


async def resolved_ids(
    address: tuple[str, int], pool: bytes, transport: str = TCP_MAPPING
) -> set[int]:
    """PE ids a registrar returns for ``pool`` (all of them); empty on error/unknown pool."""
    client = await AsapClient.open(address, transport=transport)
    try:
        response = await client.resolve(pool, 0xFFFF_FFFF)
    finally:
        await client.close()
    if response.error is not None:
        return set()
    return {pe.identifier for pe in response.pool_elements}


async def wait_until(probe: Callable[[], object], timeout: float, interval: float = 0.05) -> float:
    """Polls the (async or sync) ``probe`` until truthy; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return loop.time() - start
        if loop.time() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


# ----------------------------------------------------------------------- PE process


async def _pe_main(host: str, port: int, pool: bytes, identifier: int) -> None:
    client = await AsapClient.open((host, port))
    response = await client.register(pool, make_pe(identifier))
    print("registered" if not response.rejected else "rejected", flush=True)
    await client.closed.wait()


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "pe":
        asyncio.run(_pe_main(sys.argv[2], int(sys.argv[3]), sys.argv[4].encode(), int(sys.argv[5])))
    else:
        print("usage: service_helpers.py pe HOST PORT POOL ID", file=sys.stderr)
        sys.exit(2)


# ----------------------------------------------------------------------- CSP collector

STATUS_RE = re.compile(
    r"(?P<pes>\d+)\[(?P<owned>\d+)\] PEs in (?P<pools>\d+) Pool\(s\), "
    r"(?P<peers>\d+) Peer\(s\)"
)


class CspCollector(asyncio.DatagramProtocol):
    """Receives CSP reports on a loopback UDP port; keeps every decoded report."""

    def __init__(self) -> None:
        self.reports: list[CspReport] = []
        self.latest: dict[int, CspReport] = {}
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def start(cls) -> CspCollector:
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        report = decode_csp(data)
        self.reports.append(report)
        self.latest[report.sender_id] = report

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def counts(self, server_id: int) -> dict[str, int] | None:
        """Parsed status of the latest non-final report of registrar ``server_id``."""
        report = self.latest.get(component_id(ComponentGroup.REGISTRAR, server_id))
        if report is None or report.final:
            return None
        match = STATUS_RE.fullmatch(report.status)
        assert match is not None, report.status
        return {k: int(v) for k, v in match.groupdict().items()}

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
