"""`runservice health`: ask a running server's gRPC health service (the image's HEALTHCHECK).

The address comes from, in order: `--address`; without TLS flags, the Unix socket the server
serves its health on in its data directory (`runservice.HOSTNAME.sock`: plaintext, whatever TLS or client
certificates the server's port asks for, so the image's HEALTHCHECK works unchanged with TLS
on); the address file the server writes there when it starts (`runservice.address`: right
even when the server was started with its own `--address`); `RUNSERVICE_ADDRESS`. A wildcard
host (0.0.0.0, [::]) is checked on loopback. Exit 0 when SERVING, 1 otherwise, with one line
on stdout or stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from runservice import errors
from runservice.cli.common import seconds, unreachable_hint
from runservice.client import RUN_SERVICE_NAME, check_health
from runservice.config import ConfigError, Settings

_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]", "::": "[::1]"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `health`."""
    check = commands.add_parser(
        "health",
        help="check a running server's gRPC health (exit 0 when SERVING)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    check.add_argument(
        "--address",
        type=_address,
        help="HOST:PORT to check, or unix:PATH (default: the data dir's health socket or address file)",
    )
    check.add_argument("--data-dir", help="the server's data directory (RUNSERVICE_DATA_DIR; default ./data)")
    check.add_argument(
        "--service",
        default=RUN_SERVICE_NAME,
        help=f"service to check ('' for the server; default {RUN_SERVICE_NAME})",
    )
    check.add_argument(
        "--timeout",
        type=seconds,
        default=3.0,
        metavar="SECONDS",
        help="seconds to wait for the answer (default 3)",
    )
    check.add_argument("--tls-ca", help="PEM CA bundle: check over TLS, trusting this CA")
    check.add_argument("--tls-cert", help="PEM client certificate, for a server that asks (mTLS)")
    check.add_argument("--tls-key", help="PEM private key of --tls-cert")
    check.add_argument(
        "--tls-server-name",
        help="the name the server's certificate is checked against (default: the address's host):"
        " a probe dials the pod on loopback, but the certificate names the service",
    )
    check.set_defaults(handler=run_health)


def target_address(address: str | None, data_dir: str | None, *, tls: bool = False) -> str:
    """The address to check (see the module docstring), with a wildcard host made loopback;
    `tls`: the check is over TLS, so not on the health socket."""
    if not address:
        settings = Settings.load(data_dir=data_dir)
        if not tls and _reachable(settings.probe_socket):
            return f"unix:{settings.probe_socket.resolve()}"
        try:
            address = settings.address_file.read_text().strip()
        except OSError:
            address = ""
        address = address or settings.address
    host, _, port = address.rpartition(":")
    return f"{_WILDCARDS.get(host, host)}:{port}"


def _address(text: str) -> str:
    """An argparse type: HOST:PORT with a port from 1 to 65535 (an empty or wildcard host is
    loopback), or a Unix socket `unix:PATH`. `garbage` was checked as `127.0.0.1:garbage`,
    and failed as a server that does not answer (an audit)."""
    if text.startswith("unix:"):
        return text
    _, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be HOST:PORT with a port from 1 to 65535, or unix:PATH"
        )
    return text


def _reachable(path: Path) -> bool:
    """Whether `path` is a socket this user may connect to (the server's user alone may: another
    one dials the address, as before the socket existed)."""
    try:
        return path.is_socket() and os.access(path, os.W_OK)
    except OSError:  # a data directory this user cannot read
        return False


def run_health(args: argparse.Namespace) -> int:
    """`runservice health`."""
    try:
        tls = bool(args.tls_ca or args.tls_cert)
        target = target_address(args.address, args.data_dir, tls=tls)
        if (args.tls_cert is None) != (args.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if args.tls_server_name and not (args.tls_ca or args.tls_cert):
            raise ConfigError("--tls-server-name needs TLS: give --tls-ca")
        tls_ca, tls_cert, tls_key = (
            Path(name).read_bytes() if name else None for name in (args.tls_ca, args.tls_cert, args.tls_key)
        )
        status = asyncio.run(
            check_health(
                target,
                service=args.service,
                deadline=args.timeout,
                tls_ca=tls_ca,
                tls_cert=tls_cert,
                tls_key=tls_key,
                tls_server_name=args.tls_server_name,
            )
        )
    except errors.ServiceError as exc:
        message = exc.message
        if exc.reason == "UNAVAILABLE":  # the transport's: the hints every command gives
            hint = unreachable_hint(
                message,
                target,
                see="--address or --data-dir",
                tls_flags="--tls-ca",
                tls=tls,
                client_cert=bool(args.tls_cert),
            )
            message += f" ({hint})"
        print(f"runservice: health: {' '.join(message.split())}", file=sys.stderr)
        return 1
    except (ConfigError, OSError) as exc:
        print(f"runservice: health: {exc}", file=sys.stderr)
        return 1
    print(f"{target} {status}")
    return 0 if status == "SERVING" else 1
