"""TLS and mutual TLS from PEM files, reloaded without a restart.

grpcio's `dynamic_ssl_server_credentials` asks a fetcher for the certificate configuration
at each new TLS handshake; ours answers None (keep the current one) unless the files changed
(their size or mtime) or a reload was requested (SIGHUP). Connections already open keep the
certificate they were made with. A reload that fails (half-written file, key not matching)
is logged and the previous certificate stays in use.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

logger = logging.getLogger(__name__)


class TlsConfigError(ValueError):
    """A certificate, key or CA file is missing or unusable."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: the server's chain and key, and (for mTLS) the CA that signs client certificates."""

    cert: str
    key: str
    client_ca: str | None = None

    def paths(self) -> tuple[str, ...]:
        return (self.cert, self.key) + ((self.client_ca,) if self.client_ca else ())


def _stamp(files: TlsFiles) -> tuple[tuple[int, int], ...]:
    stamps = []
    for path in files.paths():
        info = os.stat(path)
        stamps.append((info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def _read(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    """Read and check the files: the key must match the certificate (checked with `ssl`)."""
    try:
        cert = Path(files.cert).read_bytes()
        key = Path(files.key).read_bytes()
        ca = Path(files.client_ca).read_bytes() if files.client_ca else None
    except OSError as exc:
        raise TlsConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"TLS certificate {files.cert} and key {files.key} are not a usable pair: {exc}"
        ) from None
    if files.client_ca:
        try:
            ssl.create_default_context(cafile=files.client_ca)
        except (ssl.SSLError, OSError) as exc:
            raise TlsConfigError(f"TLS client CA {files.client_ca} is not a PEM CA bundle: {exc}") from None
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def check_tls_files(files: TlsFiles) -> None:
    """TlsConfigError when the files cannot be served (checked before the server starts)."""
    _read(files)


class ReloadingCredentials:
    """Server credentials whose certificate follows the files."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._stamp = _stamp(files)
        initial = _read(files)
        self._reload_requested = False
        self.reloads = 0
        self.credentials = grpc.dynamic_ssl_server_credentials(
            initial,
            self._fetch,  # type: ignore[arg-type]  # grpc documents None as "keep the current one"
            require_client_authentication=files.client_ca is not None,
        )

    def request_reload(self) -> None:
        """Read the files again at the next handshake (SIGHUP)."""
        self._reload_requested = True

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC at every handshake, on its own thread: stat is cheap, reading is not.
        try:
            stamp = _stamp(self.files)
            if stamp == self._stamp and not self._reload_requested:
                return None
            self._reload_requested = False
            config = _read(self.files)
        except (OSError, TlsConfigError) as exc:
            logger.error("TLS reload failed, keeping the current certificate: %s", exc)
            return None
        self._stamp = stamp
        self.reloads += 1
        logger.info("TLS certificate reloaded from %s", self.files.cert)
        return config
