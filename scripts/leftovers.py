"""What a run left behind: processes it started that still listen on a TCP port.

    python scripts/leftovers.py STARTED_FILE [--port P]... [--found-port P]...
                                                          exit 1 if one is left (and name it)
    python scripts/leftovers.py STARTED_FILE --in-use PORT
                                                          exit 0 if another stack is connected to PORT

make test and make bench export STACK_STARTED_FILE (scripts/test.sh, scripts/bench.sh): every process
they start, whichever script starts it and however it daemonizes, inherits that variable, so
/proc/PID/environ tells this run's processes from everyone else's. scripts/infra.sh and
scripts/observability.sh also write into that file the name of each server they really started
(not found running), and ``platform.sh down --started`` stops those again, except one that another
stack is connected to at that moment (a client without this run's variable): on a shared machine
that server is now the other stack's, and it is reported here as kept, not as left behind.
PostgreSQL's pg_ctlcluster starts the server with an environment of its own, without the variable:
``--port`` names the ports of the servers ``down --started`` stopped, and whatever still listens on
one of them is left behind too. ``--found-port`` names those of servers that were running when the
run began: a test may have restarted one (then it carries the variable), and it stays.

Reads /proc only (Linux), so it needs neither ss nor lsof.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.stack import process_environ

MARKER = "STACK_STARTED_FILE"
LISTEN, ESTABLISHED = "0A", "01"
#: an IPv4 address as a dual-stack (Java) socket shows it in /proc/net/tcp6
MAPPED_V4 = "0000000000000000FFFF0000"
LOOPBACK = ("0100007F", "00000000000000000000000001000000")  # 127.0.0.1, ::1


def endpoint(text: str) -> str:
    """ADDR:PORT with an IPv4-mapped IPv6 address written as the IPv4 one, so both ends compare."""
    address, port = text.rsplit(":", 1)
    return f"{address.removeprefix(MAPPED_V4)}:{port}"


@dataclass(frozen=True)
class Socket:
    local: str  # "ADDR:PORT" in /proc/net/tcp's hex notation
    remote: str
    state: str
    inode: str

    @property
    def port(self) -> int:
        return int(self.local.rsplit(":", 1)[1], 16)


def sockets() -> list[Socket]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            found.append(Socket(local=endpoint(fields[1]), remote=endpoint(fields[2]), state=fields[3],
                                inode=fields[9]))
    return found


def socket_owners() -> dict[str, int]:
    """socket inode -> pid of a process holding it."""
    owners: dict[str, int] = {}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners.setdefault(target[8:-1], int(fd_dir.parent.name))
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
    return owners


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


class Machine:
    """One snapshot of the machine's TCP sockets, their owners and which of them are this run's."""

    def __init__(self, started_file: str):
        self.started_file = started_file
        self.sockets = sockets()
        self.owners = socket_owners()
        self._ours: dict[int, bool] = {}

    def ours(self, pid: int | None) -> bool:
        if pid is None:
            return False
        if pid not in self._ours:
            self._ours[pid] = process_environ(pid).get(MARKER) == self.started_file
        return self._ours[pid]

    def listening(self, ports: frozenset[int] = frozenset()) -> dict[int, set[int]]:
        """pid -> ports of this run's processes that listen, and of any process on one of PORTS."""
        found: dict[int, set[int]] = {}
        for sock in self.sockets:
            pid = self.owners.get(sock.inode)
            if sock.state == LISTEN and pid is not None and (self.ours(pid) or sock.port in ports):
                found.setdefault(pid, set()).add(sock.port)
        return found

    def other_clients(self, port: int) -> list[str]:
        """Who else is connected to PORT: each client process that is not this run's."""
        by_local = {sock.local: sock for sock in self.sockets}
        clients = []
        for sock in self.sockets:
            if sock.state != ESTABLISHED or sock.port != port:
                continue
            client = by_local.get(sock.remote)
            if client is None:
                # a local client that closed meanwhile is no user; a remote one is
                if not sock.remote.startswith(LOOPBACK):
                    clients.append(f"{sock.remote} (another host or network namespace)")
                continue
            pid = self.owners.get(client.inode)
            if not self.ours(pid):
                clients.append(f"pid {pid} ({command(pid)})" if pid else "a process not readable here")
        return clients


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("started_file", help="the run's STACK_STARTED_FILE")
    parser.add_argument("--in-use", type=int, metavar="PORT", help="is another stack connected to PORT?")
    parser.add_argument("--port", type=int, action="append", default=[],
                        help="a port of a server this run started and stopped: nothing may listen on it")
    parser.add_argument("--found-port", type=int, action="append", default=[],
                        help="a port of a server that was running before the run: it stays")
    args = parser.parse_args(argv)
    if not Path("/proc/net/tcp").exists():
        print("leftovers: needs Linux's /proc", file=sys.stderr)
        return 2
    machine = Machine(args.started_file)
    if args.in_use is not None:
        clients = machine.other_clients(args.in_use)
        print("; ".join(clients))
        return 0 if clients else 1
    left = 0
    for pid, ports in sorted(machine.listening(frozenset(args.port)).items()):
        ports_text = ",".join(map(str, sorted(ports)))
        if ports & set(args.found_port):
            print(f"kept: pid {pid} listening on {ports_text}, running before this run ({command(pid)})")
            continue
        users = [client for port in sorted(ports) for client in machine.other_clients(port)]
        if users:
            print(f"kept: pid {pid} listening on {ports_text}, used by another stack: {users[0]}"
                  f" ({command(pid)})")
        else:
            left += 1
            print(f"LEFT BEHIND: pid {pid} listening on {ports_text} ({command(pid)})")
    if left:
        print(f"leftovers: {left} process(es) started by this run still listen", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
