"""Byte relay between the container run's network and the local servers (tests/containers only).

The platform's containers reach RabbitMQ, PostgreSQL and Redis by their compose names on the
network compose creates for the test. The local servers that scripts/infra.sh starts listen on
127.0.0.1 of the host, which that network can't reach, and no server may listen anywhere else.
So two relays meet at Unix sockets in a directory both containers mount:

    python relay.py serve 5672=/relay/rabbitmq.sock ...   on the compose network (as "rabbitmq")
    python relay.py connect /relay/rabbitmq.sock=5672 ... on the host network: to 127.0.0.1:PORT
    python relay.py check 5672                             the stand-in's health check

``check`` speaks the first words of each protocol through the relays, so a stand-in turns healthy
only once the real server answers.

Standard library only: it runs in the platform image.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

#: what each server says first to a client's first bytes
PROBES = {
    5672: (b"AMQP\x00\x00\x09\x01", b"\x01"),  # protocol header: the server's Connection.Start frame
    5432: ((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"), (b"N", b"S")),  # SSLRequest
    6379: (b"PING\r\n", (b"+PONG", b"-NOAUTH")),
}


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def joiner(open_peer):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer_reader, peer_writer = await open_peer()
        except OSError as exc:
            print(f"relay: {exc}", file=sys.stderr, flush=True)
            writer.close()
            return
        await asyncio.gather(pipe(reader, peer_writer), pipe(peer_reader, writer))

    return handle


async def serve(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        port, path = pair.split("=", 1)
        servers.append(await asyncio.start_server(
            joiner(lambda path=path: asyncio.open_unix_connection(path)), "0.0.0.0", int(port)))
    await asyncio.gather(*(server.serve_forever() for server in servers))


async def connect(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        path, port = pair.split("=", 1)
        if os.path.exists(path):
            os.unlink(path)
        servers.append(await asyncio.start_unix_server(
            joiner(lambda port=port: asyncio.open_connection("127.0.0.1", int(port))), path))
        os.chmod(path, 0o666)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def check(port: int) -> int:
    hello, answers = PROBES[port]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=4) as conn:
            conn.sendall(hello)
            first = conn.recv(16)
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if not first.startswith(answers):
        print(f"unhealthy: port {port} answered {first!r}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "check":
        return check(int(argv[1]))
    if len(argv) >= 2 and argv[0] in ("serve", "connect"):
        asyncio.run((serve if argv[0] == "serve" else connect)(argv[1:]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
