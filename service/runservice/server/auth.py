"""Bearer-token authentication and tenant scoping at the gRPC edge.

Tokens come from a file and/or a comma-separated list (`RUNSERVICE_TOKENS`). Only their
SHA-256 digests are kept; a presented token is hashed and compared with every digest with
`hmac.compare_digest`, so timing says nothing about how much of it matched.

Token file formats (chosen by suffix):

    tokens.txt    one token per line, full access; blank lines and `#` comments ignored
    tokens.toml   [[tokens]] tables, see below     tokens.json  {"tokens": [ {...}, ... ]}

    [[tokens]]
    name = "tenant-a-reader"      # shown in logs, never the token itself
    token = "s3cr3t"              # or sha256 = "<hex digest>", so the file holds no secret
    resources = ["tenant-a"]      # optional: only runs with these resource ids
    read_only = true              # optional: no Start, Resume, Cancel, Restart, CreateRun, DeleteRun

The file is read again when it changes (looked at every few seconds: `follow_file`) and on
SIGHUP. The interceptor checks `authorization: Bearer <token>` on every call except health and
reflection and puts the caller in `CALLER` (a contextvar) for the servicer, which applies the
scope. The engine knows nothing of tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc

from runservice import errors
from runservice.server.calls import UNIMPLEMENTED, shown_path
from runservice.server.status import to_status
from runservice.server.watched import Stamp, WatchedFiles, off_the_loop, stamp_of

logger = logging.getLogger(__name__)

DENIALS_TOLD_EVERY = 60.0
"""Seconds between two warnings of calls refused for their token (the first is told at once)."""

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Method prefixes that need no token: probes and tooling must reach them."""


class TokenFileError(ValueError):
    """The token file cannot be read or has a wrong entry."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes the current call: a token's name and scope, or the peer when auth is off."""

    name: str
    resources: frozenset[str] | None = None
    """Resource ids whose runs this caller sees; None: every run."""
    read_only: bool = False

    def may_see(self, resource_id: str | None) -> bool:
        return self.resources is None or (resource_id is not None and resource_id in self.resources)


ANONYMOUS = Caller(name="anonymous")

CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("runservice_caller", default=ANONYMOUS)
"""The caller of the RPC being handled (set by the interceptor, read by the servicer)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    caller: Caller


class TokenSet:
    """Digests of the accepted tokens and the caller each one stands for."""

    def __init__(
        self,
        entries: Iterable[_Entry],
        *,
        path: str | None = None,
        tokens: str | None = None,
        stamp: Stamp = (),
    ) -> None:
        self._entries = tuple(entries)
        self._sources = (path, tokens)
        self.stamp = stamp
        """The file's stamp (server/watched.py) taken just before it was read."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def path(self) -> str | None:
        """The tokens file, if the tokens come from one."""
        return self._sources[0]

    @classmethod
    def load(cls, path: str | None = None, tokens: str | None = None) -> TokenSet:
        """Tokens from `path` and from the comma-separated `tokens`; TokenFileError when unusable."""
        entries: list[_Entry] = []
        for number, token in enumerate(t.strip() for t in (tokens or "").split(",")):
            if token:
                _check_sendable(token, f"token {number + 1} of the tokens setting")
                entries.append(_Entry(_digest(token), Caller(name=f"env-token-{number + 1}")))
        stamp = stamp_of((path,)) if path else ()
        if path:
            entries.extend(_read_file(Path(path)))
        return cls(entries, path=path, tokens=tokens, stamp=stamp)

    def reloaded(self) -> TokenSet:
        """The same sources read again (SIGHUP); TokenFileError when the file is now unusable."""
        return TokenSet.load(*self._sources)

    def find(self, token: str) -> Caller | None:
        """The caller of `token`, or None. Compares with every digest, found or not."""
        return self.find_digest(_digest(token))

    def find_digest(self, presented: bytes) -> Caller | None:
        """The caller of the token whose SHA-256 digest is `presented`, or None."""
        found: Caller | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry.caller
        return found


def _check_sendable(token: str, where: str) -> None:
    """TokenFileError for a token no client could send: gRPC metadata values are printable
    ASCII, and the header is `Bearer <token>`, so a space or anything else would never match."""
    if not all("!" <= char <= "~" for char in token):
        raise TokenFileError(f"{where}: a token must be printable ASCII without spaces")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _read_file(path: Path) -> list[_Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read tokens file {path}: {exc}") from None
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        lines = (line.strip() for line in text.splitlines())
        tokens = [line for line in lines if line and not line.startswith("#")]
        for n, token in enumerate(tokens):
            _check_sendable(token, f"tokens file {path}, token {n + 1}")
        return [_Entry(_digest(t), Caller(name=f"{path.name}:{n + 1}")) for n, t in enumerate(tokens)]
    if not text.strip():  # emptied: no token, as a plain file (how every token is revoked)
        return []
    try:
        data: Any = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:  # nesting too deep
        raise TokenFileError(f"tokens file {path} is not valid {suffix[1:].upper()}: {exc}") from None
    if data == {}:  # comments only (TOML), or an empty object: no token either (audit: kept them all)
        return []
    raw = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise TokenFileError(f"tokens file {path} needs a `tokens` list")
    return [_entry(item, n, path) for n, item in enumerate(raw)]


def _entry(item: Any, number: int, path: Path) -> _Entry:
    where = f"tokens file {path}, entry {number + 1}"
    if not isinstance(item, dict):
        raise TokenFileError(f"{where}: must be a table/object")
    unknown = set(item) - {"name", "token", "sha256", "resources", "read_only"}
    if unknown:
        raise TokenFileError(f"{where}: unknown keys {sorted(unknown)}")
    token, hexdigest = item.get("token"), item.get("sha256")
    if (token is None) == (hexdigest is None):
        raise TokenFileError(f"{where}: give exactly one of `token` or `sha256`")
    if token is not None:
        if not isinstance(token, str) or not token:
            raise TokenFileError(f"{where}: `token` must be a non-empty string")
        _check_sendable(token, where)
        digest = _digest(token)
    else:
        try:
            digest = bytes.fromhex(str(hexdigest))
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise TokenFileError(f"{where}: `sha256` must be 64 hex digits")
        if digest == _digest(""):  # `sha256sum` of an unset variable: it would admit "Bearer "
            raise TokenFileError(f"{where}: `sha256` is the digest of an empty token")
    if "resources" in item and item["resources"] is None:  # a null list must not mean every resource
        raise TokenFileError(f"{where}: `resources` must be a list of resource ids (leave it out for all)")
    resources = item.get("resources")
    if resources is not None and (
        not isinstance(resources, list) or not all(isinstance(r, str) and r for r in resources)
    ):
        raise TokenFileError(f"{where}: `resources` must be a list of resource ids")
    read_only = item.get("read_only", False)
    if not isinstance(read_only, bool):
        raise TokenFileError(f"{where}: `read_only` must be true or false")
    name = str(item.get("name") or f"{path.name}:{number + 1}")
    caller = Caller(
        name=name, resources=frozenset(resources) if resources is not None else None, read_only=read_only
    )
    return _Entry(digest, caller)


# -- the interceptor ---------------------------------------------------------------------------

_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]]"


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Reject calls without a known bearer token (UNAUTHENTICATED); set CALLER for the others."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens
        if not len(tokens):
            logger.warning("no bearer token yet: %s", _none_accepted(tokens))
        # Settled: a look between an editor's truncate and its write, or amid the writes of a long
        # file, would take a file cut short (tokens or a token's `resources` line missing).
        self._file = WatchedFiles((tokens.path,), stamp=tokens.stamp, settle=True) if tokens.path else None
        self._streams: dict[asyncio.Task[Any], tuple[bytes, Caller]] = {}
        """The streaming calls in progress (Watch, Stream: they may last for days), each with
        its token's digest and the caller it stood for when the call began."""
        self._revoked: set[asyncio.Task[Any]] = set()
        """Those a reload ended: their token is gone, or stands for another caller now."""
        self._denials = _Denials()
        self._wake = asyncio.Event()
        """Set by `reload`: the watcher looks now rather than at its next interval."""
        self._asked: list[asyncio.Future[None]] = []
        """The futures of `reload` calls the watcher has yet to answer."""

    async def follow_file(self, interval: float) -> None:
        """Look at the tokens file every `interval` seconds and read it again once it changed and
        then held still until the next look (so within two intervals), or at once when `reload`
        asks; until cancelled. Looks and reads run on a thread of their own: a file on a network
        file system that hangs holds up the reload, not every call."""
        if self._file is None:
            return
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            asked, self._asked = self._asked, []
            try:
                stamp = await off_the_loop(self._file.due, "tokens-file")
                if stamp is not None:
                    await self._reload(stamp)
            except Exception:  # a bug here must not end revocations for the life of the process
                logger.exception("looking at the tokens file %s failed", self.tokens.path)
            finally:
                for done in asked:
                    if not done.done():
                        done.set_result(None)

    def close(self) -> None:
        """The server stopped: refusals not yet told are told now (their minute would have
        ended after the process, and the line was lost: audit)."""
        self._denials.flush()

    def reload(self) -> asyncio.Future[None]:
        """Read the tokens file again now (SIGHUP), changed or not: the watcher does, and the
        future this returns is done once it has (at once without a tokens file)."""
        done = asyncio.get_running_loop().create_future()
        if self._file is None:
            done.set_result(None)
            return done
        # The watcher's thread may be in `due()` meanwhile: at worst this request is taken by
        # that look, whose read comes after it, or by the next.
        self._file.request()
        self._asked.append(done)
        self._wake.set()
        return done

    async def _reload(self, stamp: Stamp) -> None:
        """Read the tokens file (whose stamp was `stamp` just before) off the loop, then take it."""
        self._take(stamp, await off_the_loop(lambda: self._read(stamp), "tokens-file"))

    def _read(self, stamp: Stamp) -> TokenSet | TokenFileError | None:
        """The file read again: its tokens, why they are refused, or None when the file changed
        while it was read (what was read may be a file cut short mid-write: a token's prefix, a
        scoped token's `resources` line missing; audit). Blocking: not on the event loop."""
        try:
            tokens = self.tokens.reloaded()
        except TokenFileError as exc:
            return exc
        if self._file is not None and stamp_of(self._file.paths) != stamp:
            return None
        return tokens

    def _take(self, stamp: Stamp, read: TokenSet | TokenFileError | None) -> None:
        """Take what `_read` found. On an error keep the current tokens and log it, once: the
        watcher reads that file again only when it changes (or a minute later). A file that
        changed while it was read is read again once it holds still. Open streams whose token
        is no longer accepted, or whose scope or read-only flag changed, end with
        UNAUTHENTICATED (`TOKEN_REVOKED`); the client reconnects with what it has now.

        A file that now holds no token revokes them all (every call is UNAUTHENTICATED), as
        one that holds none at start accepts none: emptying the file is how an operator
        revokes every token, and keeping them would be the unsafe answer. It never turns
        authentication off."""
        if isinstance(read, TokenFileError):
            if self._file is not None:
                self._file.read(stamp, ok=False)
            logger.warning("tokens not reloaded, keeping the current ones: %s", read)
            return
        if read is None:
            logger.info("the tokens file changed while it was read: reading it once it holds still")
            return
        if self._file is not None:
            self._file.read(stamp, ok=True)
        tokens = self.tokens = read
        revoked = [
            task
            for task, (digest, caller) in self._streams.items()
            if task not in self._revoked and not _same_grant(tokens.find_digest(digest), caller)
        ]
        for task in revoked:
            self._revoked.add(task)
            task.cancel()
        if len(tokens):
            logger.info("tokens reloaded (%d tokens); %d open streams ended", len(tokens), len(revoked))
        else:
            logger.warning("tokens reloaded: %s; %d open streams ended", _none_accepted(tokens), len(revoked))

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if method.startswith(OPEN_SERVICES):
            return handler
        caller, digest, error = self._authenticate(handler_call_details.invocation_metadata or ())
        if error is not None:
            # A method not served is refused too: a caller without a token does not learn
            # which methods exist (it was told UNIMPLEMENTED).
            return _denying(handler or UNIMPLEMENTED, error, method, self._denials)
        if handler is None:
            return None
        assert caller is not None
        if handler.unary_stream is not None:
            return self._streaming(handler, caller, digest, method)
        if handler.unary_unary is not None:
            return self._unary(handler, caller, digest, method)
        return with_caller(handler, caller)

    def _still_granted(self, digest: bytes, caller: Caller) -> bool:
        """Whether the token a call's headers carried grants now what it did then. The headers
        are checked as they come; the request message may come long after (a client sends
        them apart), and a call whose token was revoked or narrowed meanwhile ran with the
        old grant, writes included, and its Watch was never ended (audit)."""
        return _same_grant(self.tokens.find_digest(digest), caller)

    def _unary(self, handler: _Handler, caller: Caller, digest: bytes, method: str) -> _Handler:
        """`with_caller` for a unary call, refused TOKEN_REVOKED if its token no longer grants
        what it did when the headers came (`_still_granted`)."""
        inner: Any = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if not self._still_granted(digest, caller):
                await _abort_revoked(context, method)
            CALLER.set(caller)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary, handler.request_deserializer, handler.response_serializer
        )

    def _authenticate(self, metadata: Any) -> tuple[Caller | None, bytes, errors.ServiceError | None]:
        values = [value for key, value in metadata if key == "authorization"]
        if not values:
            return (
                None,
                b"",
                errors.Unauthenticated(
                    "missing bearer token: send metadata `authorization: Bearer <token>`",
                    reason="TOKEN_MISSING",
                ),
            )
        value = values[0] if isinstance(values[0], str) else values[0].decode("latin-1")
        scheme, _, token = value.partition(" ")
        token = token.strip()
        digest = _digest(token)
        caller = self.tokens.find_digest(digest) if scheme.lower() == "bearer" and token else None
        if caller is None:
            return None, b"", errors.Unauthenticated("invalid bearer token", reason="TOKEN_INVALID")
        return caller, digest, None

    def _streaming(self, handler: _Handler, caller: Caller, digest: bytes, method: str) -> _Handler:
        """`with_caller` for a server-streaming call, which a reload may end (`reload`)."""
        inner: Any = handler.unary_stream
        streams, revoked = self._streams, self._revoked

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            CALLER.set(caller)
            task = asyncio.current_task()
            assert task is not None
            streams[task] = (digest, caller)  # from now on, a reload that revokes it ends it
            if not self._still_granted(digest, caller):  # a reload came before: as if it ended it
                streams.pop(task, None)
                await _abort_revoked(context, method)
            try:
                # Closed with this wrapper, so the handler's cleanup runs now, not at collection.
                async with contextlib.aclosing(inner(request, context)) as messages:
                    async for message in messages:
                        # Written here, not yielded: a revocation that comes while gRPC waits to
                        # send (a client reading slower than the run writes) lands in this frame,
                        # which ends the call with TOKEN_REVOKED. Yielded, it landed in gRPC's
                        # own send and the call hung with no status at all (audit).
                        await context.write(message)
            except asyncio.CancelledError:
                if task not in revoked:
                    raise
                task.uncancel()
                await _abort_revoked(context, method)
            finally:
                streams.pop(task, None)
                revoked.discard(task)

        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )


async def _abort_revoked(context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
    """End the call UNAUTHENTICATED, TOKEN_REVOKED (raises, as `context.abort` does)."""
    status = to_status(
        errors.Unauthenticated(
            "the token of this call was revoked or changed (tokens reloaded); call again",
            reason="TOKEN_REVOKED",
        ),
        method=method,
    )
    await context.abort(status.code, status.details, status.trailing_metadata)


def _same_grant(now: Caller | None, before: Caller) -> bool:
    """Whether a token still grants what it did: accepted, with the same scope. Not its name: a
    plain file's tokens are named by their line, and removing one line renames those after it
    (audit: that ended the open streams of tokens nobody changed)."""
    return now is not None and (now.resources, now.read_only) == (before.resources, before.read_only)


def _none_accepted(tokens: TokenSet) -> str:
    source = f"the tokens file {tokens.path}" if tokens.path else "the tokens setting"
    return f"{source} holds none, so every call is refused (UNAUTHENTICATED) until it holds one"


def with_caller(handler: _Handler, caller: Caller) -> _Handler:
    """`handler` with CALLER set to `caller` inside the call (unary and server-streaming)."""
    if handler.unary_unary is not None:
        inner_unary: Any = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            CALLER.set(caller)
            return await inner_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        inner_stream: Any = handler.unary_stream

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            CALLER.set(caller)
            # Closed with this wrapper, so the handler's cleanup runs now, not at collection.
            async with contextlib.aclosing(inner_stream(request, context)) as messages:
                async for message in messages:
                    yield message

        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )
    return handler  # RunService has no client-streaming methods


_PEERS_COUNTED = 1000
"""Distinct peer hosts counted between two lines (past it, only those already counted)."""


class _Denials:
    """Calls refused for their token, told in the log without the access log (a guessing
    caller, a client left with a revoked token): the first at once, then at most one line a
    `DENIALS_TOLD_EVERY` with how many were refused since the last line, why, and from which
    host most came. A burst is told when its minute ends, with no later refusal needed (audit)."""

    def __init__(self) -> None:
        self._told_at = -DENIALS_TOLD_EVERY
        self._since: dict[str, int] = {}
        self._hosts: dict[str, int] = {}
        self._last = ("", "")
        self._due: asyncio.TimerHandle | None = None

    def note(self, reason: str, method: str, peer: str) -> None:
        """On the event loop, for each call refused."""
        self._since[reason] = self._since.get(reason, 0) + 1
        host = peer.rsplit(":", 1)[0]  # the port differs at each connection
        if host in self._hosts or len(self._hosts) < _PEERS_COUNTED:
            self._hosts[host] = self._hosts.get(host, 0) + 1
        self._last = (method, peer)
        wait = self._told_at + DENIALS_TOLD_EVERY - time.monotonic()
        if wait <= 0:
            self._tell()
        elif self._due is None:
            self._due = asyncio.get_running_loop().call_later(wait, self._tell)

    def flush(self) -> None:
        """Tell the refusals not yet told now, rather than when their minute ends."""
        if self._due is not None:
            self._due.cancel()
            self._tell()

    def _tell(self) -> None:
        self._due = None
        if not self._since:
            return
        counts = ", ".join(f"{count} {why}" for why, count in sorted(self._since.items()))
        host = max(self._hosts, key=self._hosts.__getitem__)
        method, peer = self._last
        logger.warning(
            "calls refused for their bearer token: %s (most from %s: %d; last: %s from %s)",
            counts,
            host,
            self._hosts[host],
            method,
            peer,
        )
        self._told_at, self._since, self._hosts = time.monotonic(), {}, {}


def _denying(handler: _Handler, error: errors.ServiceError, method: str, denials: _Denials) -> _Handler:
    method = shown_path(method)  # the caller chose it: it may name no method, at any length
    status = to_status(error, method=method)

    async def abort(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        denials.note(error.reason, method, context.peer())
        await context.abort(status.code, status.details, status.trailing_metadata)

    if handler.unary_stream is not None:

        async def deny_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await abort(context)
            yield  # pragma: no cover (abort raises)

        return grpc.unary_stream_rpc_method_handler(
            deny_stream, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_stream is not None:  # (a method not served) whatever the caller sends

        async def deny_any(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await abort(context)

        return grpc.stream_stream_rpc_method_handler(
            deny_any, handler.request_deserializer, handler.response_serializer
        )

    async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort(context)

    return grpc.unary_unary_rpc_method_handler(
        deny, handler.request_deserializer, handler.response_serializer
    )
