"""Hosts of their own on this machine: a network namespace per host, linked to this
(the root) namespace by a veth pair, so one host's network can be cut alone.

    hosts = NamespaceHosts(2).create()        # or `with NamespaceHosts(2) as hosts:`
    hosts[0].address, hosts[0].gateway        # 10.77.N.2 in its namespace, 10.77.N.1 here
    hosts[0].command("loanflow", "api")       # ["ip", "netns", "exec", NS, "loanflow", …]
    hosts[0].cut(); hosts[0].heal()           # iptables DROP inside it, both ways
    hosts.remove()                            # the processes in them, the links, the namespaces

Each host has a /30 of its own in a 10.77.N.0/24 no interface here uses yet: its
end `.4i+2`, this namespace's end `.4i+1`, which is also its default route, so
servers this side reach it and it reaches servers bound to its gateway. Names
carry the creating process's pid (`lfnet-PID-TOKEN-I`): `create()` first removes
the namespaces of a creator that died without its cleanup (a SIGKILLed pytest),
and deleting a namespace deletes its veth pair and its iptables rules with it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

IP = "ip"
IPTABLES = "iptables"
#: Where the per-run /24 is drawn from: private, and unlikely to be in use on a test machine.
NETWORK_PREFIX = "10.77"
NAME_PREFIX = "lfnet"
#: Bounded: one `ip`/`iptables` command, and the processes of a namespace dying on SIGKILL.
COMMAND_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0
_NAME = re.compile(rf"^{NAME_PREFIX}-(\d+)-[0-9a-f]+-\d+$")


class NetworkError(RuntimeError):
    """An `ip` or `iptables` command failed; the message has its stderr."""


def run(*args: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise NetworkError(f"{args[0]} is not installed (`make test` installs it)") from exc
    if done.returncode != 0:
        raise NetworkError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    index: int
    netns: str
    #: This namespace's end of its veth pair (the host's end has the same name there).
    link: str
    address: str
    gateway: str

    def command(self, *args: str) -> list[str]:
        """`args` run inside the host's namespace (`ip netns exec` execs: same pid)."""
        return [IP, "netns", "exec", self.netns, *args]

    def cut(self) -> None:
        """Drop every packet in and out of the host (its loopback included), as a pulled
        cable or a partition looks from both sides: no reset, no answer. Both ways at
        once (one iptables-restore transaction)."""
        self._rules("-I")

    def heal(self) -> None:
        self._rules("-D")

    def _rules(self, action: str) -> None:
        rules = f"*filter\n{action} INPUT -j DROP\n{action} OUTPUT -j DROP\nCOMMIT\n"
        run(*self.command(f"{IPTABLES}-restore", "-w", "--noflush"), stdin=rules)

    def pids(self) -> list[int]:
        return _pids(self.netns)


class NamespaceHosts:
    def __init__(self, count: int) -> None:
        if not 0 < count <= 32:
            raise ValueError(f"expected 1 to 32 hosts, got {count}")
        self.count = count
        self.token = secrets.token_hex(3)
        self.hosts: list[Host] = []

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    @property
    def networks(self) -> list[str]:
        """The hosts' /30s, CIDR (to trust in pg_hba.conf)."""
        return [f"{h.gateway.rpartition('.')[0]}.{4 * h.index}/30" for h in self.hosts]

    def create(self) -> NamespaceHosts:
        for tool in (IP, IPTABLES):
            if shutil.which(tool) is None:
                raise NetworkError(f"{tool} is not installed (`make test` installs it)")
        remove_orphans()
        subnet = f"{NETWORK_PREFIX}.{_unused_octet()}"
        try:
            for i in range(self.count):
                self.hosts.append(self._create_host(i, subnet))
        except BaseException:
            self.remove()
            raise
        return self

    def _create_host(self, i: int, subnet: str) -> Host:
        host = Host(index=i, netns=f"{NAME_PREFIX}-{os.getpid()}-{self.token}-{i}",
                    link=f"lf{self.token}h{i}", address=f"{subnet}.{4 * i + 2}",
                    gateway=f"{subnet}.{4 * i + 1}")
        run(IP, "netns", "add", host.netns)
        # Its end is created in its namespace at once: no name to clash with here.
        run(IP, "link", "add", host.link, "type", "veth", "peer", "name", host.link,
            "netns", host.netns)
        run(IP, "addr", "add", f"{host.gateway}/30", "dev", host.link)
        run(IP, "link", "set", host.link, "up")
        inside = host.command(IP)
        run(*inside, "link", "set", "lo", "up")
        run(*inside, "addr", "add", f"{host.address}/30", "dev", host.link)
        run(*inside, "link", "set", host.link, "up")
        run(*inside, "route", "add", "default", "via", host.gateway)
        return host

    def remove(self) -> None:
        """Kill what runs inside, delete the links and the namespaces; never raises for
        one already gone, so it can run after any failure."""
        for host in self.hosts:
            _remove_netns(host.netns, link=host.link)
        self.hosts.clear()

    def __enter__(self) -> NamespaceHosts:
        return self.create()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()


def remove_orphans() -> list[str]:
    """Remove the namespaces of creators that no longer run; their names."""
    removed = []
    for name in run(IP, "netns", "list").split():
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            _remove_netns(name, link=None)
            removed.append(name)
    return removed


def _remove_netns(netns: str, *, link: str | None) -> None:
    pids = _pids(netns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.02)
    if link is not None:
        with contextlib.suppress(NetworkError):  # gone with an earlier namespace delete
            run(IP, "link", "del", link)
    with contextlib.suppress(NetworkError):
        run(IP, "netns", "del", netns)


def _pids(netns: str) -> list[int]:
    try:
        return [int(pid) for pid in run(IP, "netns", "pids", netns).split()]
    except NetworkError:  # no such namespace
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is gone for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _unused_octet() -> int:
    """A third octet no address here has under NETWORK_PREFIX (another run's, say)."""
    used = set(re.findall(rf"inet {re.escape(NETWORK_PREFIX)}\.(\d+)\.",
                          run(IP, "-4", "-o", "addr", "show")))
    free = [n for n in range(256) if str(n) not in used]
    if not free:
        raise NetworkError(f"every {NETWORK_PREFIX}.N.0/24 is in use here")
    return random.choice(free)
