"""How both clients open a channel: TLS, per-call metadata, the published service config, retries.

The service config is the contract's `protos/runservice/v1/service_config.json`, shipped in the
package as `runservice.v1/service_config.json`: a deadline for short unary calls, retries of
every unary call on UNAVAILABLE only (Start, Resume, Cancel, Restart, DeleteRun, TimeTravel,
ForkRun and TriggerSchedule carry a `request_id`, which the clients always set, so a retry returns
the first outcome), nothing for the Stream and Watch streams (they are resumed from their cursor by the
clients instead).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import grpc

from runservice.model import Json

_MIB = 1024 * 1024

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # The server's send limit (server/app.py); a reply is never bigger.
    ("grpc.max_receive_message_length", 8 * _MIB),
    # No send limit: the server decides, and its refusal of a request over its limit says more
    # (MESSAGE_TOO_LARGE with the size and the limit) than a client-side RESOURCE_EXHAUSTED.
    # Ping an idle connection every 30 s (the server allows one per 10 s), so a dead peer or
    # a proxy that dropped the connection is noticed within 40 s, even during a quiet Watch.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # What a ping's answer is waited for (gRPC 1.85 ignores keepalive_timeout_ms for that: its
    # own 60 s default made a silently dropped connection take 90 s to notice). Kept equal to
    # keepalive_timeout_ms by `channel_options`.
    ("grpc.http2.ping_timeout_ms", 10_000),
    # A channel whose server went away tries to connect again after a backoff that grows to
    # gRPC's default of 120 s, and fails every call at once meanwhile (every channel of the
    # process to that address shares the connection): a server back after a 45 s restart was
    # reached 21 s later, a Watch resumed 27 s later. At most 5 s instead.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


@functools.cache
def _published() -> str:
    return (resources.files("runservice.v1") / "service_config.json").read_text(encoding="utf-8")


def published_service_config() -> dict[str, Json]:
    """The contract's gRPC service config (a fresh copy to edit)."""
    config: dict[str, Json] = json.loads(_published())
    return config


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """gRPC retries of unary calls (the service config's `retryPolicy`).

    `DEFAULT_RETRY` is the published one. Only UNAVAILABLE is retried unless you add codes:
    anything else may have changed something on the server.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 3.0
    multiplier: float = 2.0
    codes: tuple[str, ...] = ("UNAVAILABLE",)

    @classmethod
    def from_config(cls, policy: dict[str, Json]) -> RetryPolicy:
        """A policy from a service config's `retryPolicy` object."""
        return cls(
            max_attempts=int(policy["maxAttempts"]),
            initial_backoff=float(str(policy["initialBackoff"]).removesuffix("s")),
            max_backoff=float(str(policy["maxBackoff"]).removesuffix("s")),
            multiplier=float(policy["backoffMultiplier"]),
            codes=tuple(policy["retryableStatusCodes"]),
        )

    def as_config(self) -> dict[str, Json]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": _duration(self.initial_backoff),
            "maxBackoff": _duration(self.max_backoff),
            "backoffMultiplier": self.multiplier,
            "retryableStatusCodes": list(self.codes),
        }


def _duration(seconds: float) -> str:
    """Seconds as a service config duration ("0.2s", "3s"; never an exponent)."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _published_retry() -> RetryPolicy:
    for method in published_service_config()["methodConfig"]:
        if "retryPolicy" in method:
            return RetryPolicy.from_config(method["retryPolicy"])
    raise ValueError("the published service config has no retry policy")


DEFAULT_RETRY = _published_retry()
"""The published retry policy (the service config's, read at import)."""


def service_config(retry: RetryPolicy | None = DEFAULT_RETRY) -> dict[str, Json]:
    """The published service config with `retry` as every retry policy (None: no retries)."""
    config = copy.deepcopy(published_service_config())
    for method in config["methodConfig"]:
        if "retryPolicy" not in method:
            continue  # the streams: resumed by the client from their cursor
        if retry is None:
            del method["retryPolicy"]
        else:
            method["retryPolicy"] = retry.as_config()
    return config


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """TLS from PEM files: `ca` to verify the server (None: system roots), `cert` + `key` for mTLS."""

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | Path | None) -> bytes | None:
            if path is None:
                return None
            pem = Path(path).read_bytes()
            if b"-----BEGIN " not in pem:  # gRPC would log its own error lines, then fail each call
                raise ValueError(f"{path} is not a PEM file (no -----BEGIN line)")
            return pem

        if (self.cert is None) != (self.key is None):
            raise ValueError("TlsFiles needs both cert and key for client authentication, or neither")
        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca), private_key=read(self.key), certificate_chain=read(self.cert)
        )


Credentials = grpc.ChannelCredentials | TlsFiles
"""TLS for a channel: ready credentials, or PEM files. None means plaintext."""


def channel_credentials(credentials: Credentials | None) -> grpc.ChannelCredentials | None:
    return credentials.credentials() if isinstance(credentials, TlsFiles) else credentials


def checked_target(target: str) -> str:
    """`target`, or ValueError when it is blank (gRPC would log its own error lines, then fail)."""
    if not target.strip():
        raise ValueError("the target is empty: give HOST:PORT (or a gRPC target URI)")
    return target


def call_metadata(metadata: Any = (), token: str | None = None) -> tuple[tuple[str, str | bytes], ...]:
    """Metadata sent with every call: `metadata` pairs (or a dict), plus `authorization: Bearer`.

    Raises ValueError for a token gRPC cannot send (it would fail every call with a C-core
    batch error instead)."""
    pairs = list(metadata.items() if isinstance(metadata, dict) else metadata)
    if token is not None:
        if not token or not all("!" <= char <= "~" for char in token):  # as the server's tokens
            raise ValueError("the token must be non-empty printable ASCII, no spaces (a trailing newline?)")
        pairs.append(("authorization", f"Bearer {token}"))
    return tuple((str(key).lower(), value) for key, value in pairs)


def channel_options(
    *,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    config: dict[str, Json] | None = None,
    options: Any = (),
    timeout: float | None = None,
) -> list[tuple[str, Any]]:
    """Options for a client channel: limits, keepalive and the service config, each replaced by
    an option of `options` with the same key; the other `options` are added.

    `config` replaces the published service config entirely (then `retry` is ignored).
    `timeout`, the client's deadline of unary calls: when it is longer than the published
    config's 30 s, that is dropped (gRPC applies the shorter of the two, so a longer deadline
    was cut to 30 s; the client's own, sent with every call, bounds them).
    A `grpc.keepalive_timeout_ms` of `options` sets `grpc.http2.ping_timeout_ms` too, unless
    `options` sets that as well.
    """
    chosen = service_config(retry) if config is None else config
    if config is None and timeout is not None:
        for method in chosen["methodConfig"]:
            if float(str(method.get("timeout", "inf")).rstrip("s")) < timeout:
                del method["timeout"]
    merged = dict(CHANNEL_OPTIONS)
    merged["grpc.enable_retries"] = 1
    merged["grpc.service_config"] = json.dumps(chosen)
    # One entry per key: gRPC takes the first occurrence of a key, so appending the caller's
    # options after ours would silently keep ours.
    given = dict(options)
    merged.update(given)
    if "grpc.keepalive_timeout_ms" in given and "grpc.http2.ping_timeout_ms" not in given:
        merged["grpc.http2.ping_timeout_ms"] = given["grpc.keepalive_timeout_ms"]
    return list(merged.items())
