"""TLS and mutual TLS from PEM files, reloaded without a restart.

grpcio's `dynamic_ssl_server_credentials` asks a fetcher for the certificate configuration
at each new TLS handshake; ours answers None (keep the current one) unless the files changed
(see server/watched.py) or a reload was requested (SIGHUP). Connections already open keep the
certificate they were made with. A reload that fails (half-written file, key not matching)
is logged once and the previous certificate stays in use; the files are read again when they
change (or a minute later), and a reload that works after a failure says so.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from runservice.server.watched import WatchedFiles

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
        self._watch = WatchedFiles(files.paths())  # stamped before the read: a change meanwhile is seen
        initial = _read(files)
        # gRPC fetches on its own threads, one per handshake in progress: one reads, the others
        # keep the current certificate meanwhile (and none logs the same failure again).
        self._lock = threading.Lock()
        self._requested = False
        """Set by `request_reload` (on the event loop, without the lock: a handshake thread may
        hold it for as long as a file read hangs); taken by the next fetch."""
        self.reloads = 0
        self.credentials = grpc.dynamic_ssl_server_credentials(
            initial,
            self._fetch,  # type: ignore[arg-type]  # grpc documents None as "keep the current one"
            require_client_authentication=files.client_ca is not None,
        )

    def request_reload(self) -> None:
        """Read the files again at the next handshake (SIGHUP). Never waits: it took the lock,
        and a handshake reading a file that hangs (a network file system gone) held it, so a
        SIGHUP froze the event loop and every call with it (audit)."""
        self._requested = True

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC at every handshake: a stat per file is cheap, reading them is not.
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._requested:
                self._requested = False
                self._watch.request()
            stamp = self._watch.due()
            if stamp is None:
                return None
            recovering = self._watch.failing
            try:
                config = _read(self.files)
            except TlsConfigError as exc:
                self._watch.read(stamp, ok=False)
                logger.error("TLS reload failed, keeping the current certificate: %s", exc)
                return None
            self._watch.read(stamp, ok=True)
            self.reloads += 1
        finally:
            self._lock.release()
        if recovering:
            logger.info("TLS certificate reloaded from %s: the files are usable again", self.files.cert)
        else:
            logger.info("TLS certificate reloaded from %s", self.files.cert)
        return config
