"""`runservice health` with TLS and client certificates on: the image's HEALTHCHECK unchanged.

A probe inside the container dials the server on loopback, but a server serving TLS (and asking
for client certificates) refused its plaintext check, so the image's `HEALTHCHECK` (plain
`runservice health`) failed with TLS on (deploy audit). The server also serves its health service
alone, in plaintext, on a Unix socket in its data directory that only its owner may connect to;
`runservice health` without TLS flags uses it, and the address otherwise.
"""

from __future__ import annotations

import stat
from pathlib import Path
from socket import gethostname

import pytest
import trustme
from clitools import clean_env, runservice
from process import serve_argv, server_env, start_server

from runservice import errors
from runservice.client import Client

pytestmark = pytest.mark.timeout(60)


async def test_health_needs_no_tls_files_on_the_data_directorys_socket(tmp_path: Path) -> None:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    cert = server_ca.issue_cert("runservice.default.svc")
    chain, key, client_ca_file = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "client-ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    client_ca_file.write_bytes(client_ca.cert_pem.bytes())
    data = tmp_path / "data"
    tls = {"RUNSERVICE_TLS_CERT": str(chain), "RUNSERVICE_TLS_KEY": str(key)}
    env = server_env(**tls, RUNSERVICE_TLS_CLIENT_CA=str(client_ca_file))
    argv = serve_argv("--data-dir", str(data), "--workflows", "tests.workflows")
    server = await start_server(argv, env=env)
    try:
        socket = data / f"runservice.{gethostname()}.sock"
        assert stat.S_ISSOCK(socket.stat().st_mode)
        assert stat.S_IMODE(socket.stat().st_mode) == 0o600

        checked = await runservice("health", "--data-dir", str(data), env=clean_env())
        assert checked.code == 0, checked.err
        assert checked.out.strip() == f"unix:{socket.resolve()} SERVING"
        liveness = await runservice("health", "--data-dir", str(data), "--service", "", env=clean_env())
        assert liveness.code == 0 and liveness.out.strip().endswith("SERVING"), liveness.err
        # The socket serves health alone: nothing else of the service skips TLS.
        async with Client(f"unix:{socket}", timeout=5, retry=None) as client:
            with pytest.raises(errors.Unimplemented):
                await client.list_workflows()

        # The TCP port still asks for TLS and a client certificate: a plain check is refused there.
        plain = await runservice("health", "--address", server.address, env=clean_env())
        assert plain.code == 1 and "health check" in plain.err, plain.err
        assert await server.stop() == 0
    finally:
        await server.kill()
    assert not (data / f"runservice.{gethostname()}.sock").exists()
    gone = await runservice("health", "--data-dir", str(data), env=clean_env())
    assert gone.code == 1, gone.out


async def test_a_data_directory_too_deep_for_a_socket_is_served_without_one(tmp_path: Path) -> None:
    """`runservice health` then dials the address the server wrote into its data directory."""
    data = tmp_path / ("d" * 60) / ("e" * 60)
    server = await start_server(
        serve_argv("--data-dir", str(data), "--workflows", "tests.workflows"), env=server_env()
    )
    try:
        assert "no health socket" in server.text and " WARNING " not in server.text, server.text[-2000:]
        checked = await runservice("health", "--data-dir", str(data), env=clean_env())
        assert checked.code == 0 and checked.out.strip() == f"{server.address} SERVING", checked.err
        assert await server.stop() == 0
    finally:
        await server.kill()


async def test_a_second_server_on_the_data_directory_leaves_the_first_ones_socket_alone(
    tmp_path: Path,
) -> None:
    """gRPC replaces any file at the path when it binds and removes it when it stops: a second
    server of this host on the same data directory (replicas sharing a volume, a rolling update)
    took the first one's socket, and removed it when it stopped (audit)."""
    data = tmp_path / "data"
    socket = data / f"runservice.{gethostname()}.sock"
    argv = ("--data-dir", str(data), "--workflows", "tests.workflows")
    first = await start_server(serve_argv(*argv), env=server_env())
    try:
        inode = socket.stat().st_ino
        second = await start_server(
            serve_argv(*argv, "--database-url", f"sqlite:///{tmp_path / 'second.db'}"), env=server_env()
        )
        try:
            assert "another server of this host serves" in second.text, second.text[-2000:]
            assert socket.stat().st_ino == inode
            assert await second.stop() == 0
        finally:
            await second.kill()
        assert socket.stat().st_ino == inode
        checked = await runservice("health", "--data-dir", str(data), env=clean_env())
        assert checked.code == 0 and checked.out.strip() == f"unix:{socket.resolve()} SERVING", checked.err
        assert await first.stop() == 0
    finally:
        await first.kill()
