"""What the commands that call a server share: options, JSON input, errors and exit codes.

Exit codes of every command:

    0    done (for `--wait` on `start`, `resume`, `time-travel` and `fork`: the run succeeded or is
         suspended; for `watch`: it succeeded)
    1    the call failed: the server answered with an error status, or could not be reached
         in time (also `check` when a workflows module is wrong)
    2    usage: an unknown flag, a missing argument, input that is not JSON
    3    `start`, `resume`, `time-travel` or `fork` with `--wait`, or `watch`: the run ended failed
         or canceled
    130  interrupted (Ctrl-C)

An error is one line on stderr, `runservice: error: CODE REASON: message`; with `--json`
the same error is also printed to stdout as `{"error": {...}}`.

A server that requires a bearer token gets the one in RUNSERVICE_TOKEN (never a flag: it would
show in `ps`); `--tls`, `--tls-ca`, `--tls-cert` and `--tls-key` connect over TLS or mTLS.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runservice import errors
from runservice.config import TARGET_ENV, TOKEN_ENV
from runservice.model import Json, Run, RunStatus

if TYPE_CHECKING:
    from runservice.client import Client, RunHandle

EXIT_OK = 0
EXIT_CALL = 1
EXIT_USAGE = 2
EXIT_RUN = 3
EXIT_INTERRUPTED = 130

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 30.0
"""Seconds a call that does not wait for a run may take when --timeout is not given."""
MAX_SECONDS = 1e9
"""The longest --timeout or --run-timeout (about 31 years). gRPC keeps a deadline in int64
nanoseconds: one past the year 2262 (a --timeout of 1e10) failed at once, DEADLINE_EXCEEDED."""


USAGE = "USAGE"
"""The `reason` of a usage error in `--json` output (its code: INVALID_ARGUMENT)."""


class UsageError(Exception):
    """The command line asks for something that cannot be done (exit 2)."""


def client_options() -> argparse.ArgumentParser:
    """The options of every command that calls a server (a parent parser)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection and output")
    group.add_argument(
        "--target",
        metavar="HOST:PORT",
        default=os.environ.get(TARGET_ENV) or DEFAULT_TARGET,
        help=f"the server to call ({TARGET_ENV}; default {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds,
        default=None,
        help=f"give up after SECONDS (default {DEFAULT_TIMEOUT:g} s per call; none with --wait or watch)",
    )
    group.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    group.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS (the system's roots, or --tls-ca); implied by --tls-ca and --tls-cert",
    )
    group.add_argument("--tls-ca", metavar="PEM", help="CA bundle that signed the server's certificate")
    group.add_argument("--tls-cert", metavar="PEM", help="client certificate, for a server that asks (mTLS)")
    group.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    return parent


def _credentials(args: argparse.Namespace) -> Any:
    """TLS files for the client, or None for plaintext."""
    from runservice.client import TlsFiles

    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    return TlsFiles(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{text!r} must be {span}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse type: a number of seconds more than 0 and at most MAX_SECONDS (a usage
    error, exit 2, otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number more than 0")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most {MAX_SECONDS:.0f} seconds")
    return value


def seconds_or_never(text: str) -> float:
    """An argparse type: a number of seconds from 0 (which means never) to MAX_SECONDS. NaN and
    negative numbers are refused: taken as 0, they meant "never" in silence (an audit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= MAX_SECONDS:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 (never) to {MAX_SECONDS:.0f} seconds")
    return value


def read_json(text: str | None, flag: str) -> Json:
    """The JSON value of a flag: inline JSON, `@FILE` for a file's contents or `-` for stdin."""
    if text is None:
        return None
    source = "the argument"
    try:
        if text == "-":
            source, text = "stdin", sys.stdin.buffer.read().decode("utf-8-sig")
        elif text.startswith("@"):
            path = Path(text[1:]).expanduser()
            source = str(path)
            try:
                # utf-8-sig: a byte-order mark (Notepad, PowerShell) is skipped, as RFC 8259 allows.
                text = path.read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise UsageError(f"{flag}: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{flag}: {source} is not UTF-8 text (byte {exc.start}: {exc.reason}); JSON must be UTF-8"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{flag}: {source} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def run_handle(
    client: Client, run_id: str, *, workflow_id: str = "", resource_id: str | None = None
) -> RunHandle:
    """A handle on a run; the server finds the workflow when `workflow_id` is empty."""
    from runservice.client import RunHandle

    return RunHandle(client, workflow_id, run_id, resource_id=resource_id)


def run_exit_code(run: Run) -> int:
    """EXIT_RUN when the run ended failed or canceled, else EXIT_OK."""
    return EXIT_RUN if run.status in (RunStatus.FAILED, RunStatus.CANCELED) else EXIT_OK


Command = Callable[["Client", argparse.Namespace], Awaitable[int]]


def client_command(body: Command) -> Callable[[argparse.Namespace], int]:
    """A parser handler that connects to `--target`, runs `body` and turns errors into exit codes."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(_with_client(body, args))
        except UsageError as exc:
            return fail_usage(str(exc), args)
        except UnicodeEncodeError as exc:
            # An argument of bytes that are not UTF-8 (a run id), or a JSON escape of a lone
            # surrogate, refused as the request is encoded. Only that: output never fails to
            # encode (`writes_utf8`, `print_json`, and `main` makes stdout escape what its
            # encoding lacks), and it once came here, pasted whole into the message (audit).
            if codecs.lookup(exc.encoding).name != "utf-8":
                raise
            return fail_usage(f"{_excerpt(exc)} is not valid UTF-8", args)
        except errors.ServiceError as exc:
            return fail_call(exc, args)
        except TimeoutError:
            late = errors.ServiceError(f"no answer within {args.timeout:g} s", reason="DEADLINE_EXCEEDED")
            return fail_call(late, args)
        except KeyboardInterrupt:
            waited = getattr(args, "waiting_on", None)
            if waited:  # the wait ended here, not the run
                message = f"interrupted; {_still_running(waited)}"
                if getattr(args, "json", False):
                    metadata = {"run_id": waited}
                    print_json({"error": _error_json("CANCELLED", "INTERRUPTED", message, metadata)})
                return fail(message, EXIT_INTERRUPTED)
            print(file=sys.stderr)
            return EXIT_INTERRUPTED

    handler.__doc__ = body.__doc__
    return handler


async def _with_client(body: Command, args: argparse.Namespace) -> int:
    from runservice.client import Client

    # The token only from the environment: a flag would show it in `ps` and shell history.
    token = os.environ.get(TOKEN_ENV) or None
    try:
        client = Client(
            args.target,
            timeout=args.timeout or DEFAULT_TIMEOUT,
            token=token,
            credentials=_credentials(args),
        )
    except OSError as exc:  # a TLS file
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
    except ValueError as exc:  # the token, the TLS files' pairing
        raise UsageError(f"{TOKEN_ENV}: {exc}" if "token" in str(exc) else str(exc)) from None
    async with client:
        if args.timeout is None:
            return await body(client, args)
        async with asyncio.timeout(args.timeout):
            return await body(client, args)


def fail(message: str, code: int) -> int:
    """Print `runservice: error: MESSAGE` (one line) on stderr and return `code`."""
    print(f"runservice: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def fail_usage(message: str, args: argparse.Namespace | None = None, *, as_json: bool = False) -> int:
    """Report a usage error in one line, and with --json (`args.json`, or `as_json`) also as
    `{"error": {...}}` on stdout, as every error is (code INVALID_ARGUMENT, reason USAGE); EXIT_USAGE."""
    if as_json or getattr(args, "json", False):
        print_json({"error": usage_error_json(message)})
    return fail(message, EXIT_USAGE)


def usage_error_json(message: str) -> dict[str, Json]:
    """A usage error for `--json` output."""
    return _error_json("INVALID_ARGUMENT", USAGE, " ".join(message.split()), {})


def local_error_json(code: str, reason: str, message: str, metadata: dict[str, str]) -> dict[str, Json]:
    """A failure of a command that calls no server (`backup`, `restore`) for `--json` output:
    the shape of a server's error, with the code and reason the command gives it."""
    return _error_json(code, reason, " ".join(message.split()), metadata)


def status_code(exc: errors.ServiceError) -> str:
    """The gRPC status code name of a service error."""
    from runservice.client.status import code_name  # here: the client loads only when used

    code = getattr(exc, "code", None)  # a client that records the code says it directly
    if isinstance(code, str) and code:
        return code
    name = code_name(exc)
    if name is not None:
        return name
    # Not one of ours (a transport error such as CANCELLED): the reason is the code.
    return exc.reason if exc.reason.isupper() else "UNKNOWN"


def error_json(exc: errors.ServiceError) -> dict[str, Json]:
    """A service error for `--json` output."""
    violations = [{"field": v.field, "description": v.description} for v in exc.violations]
    return _error_json(status_code(exc), exc.reason, exc.message, dict(exc.metadata), violations)


def _error_json(
    code: str, reason: str, message: str, metadata: dict[str, str], violations: Json = None
) -> dict[str, Json]:
    """The `error` object of `--json` output (README, Command line)."""
    return {
        "code": code,
        "reason": reason,
        "message": message,
        "metadata": dict(metadata),
        "violations": violations if violations is not None else [],
    }


def fail_call(exc: errors.ServiceError, args: argparse.Namespace) -> int:
    """Report a failed call in one line (and as JSON with --json); EXIT_CALL."""
    code = status_code(exc)
    head = code if exc.reason == code else f"{code} {exc.reason}"
    text = exc.message
    # Only what the message does not say already: the server's often is its one violation
    # (`step: workflow 'x' has no step 'nope'`), and the line said it twice (audit).
    untold = [told for v in exc.violations if (told := f"{v.field}: {v.description}") not in text]
    if untold:
        text += " (" + "; ".join(untold) + ")"
    if code == "UNAVAILABLE" and exc.reason == "UNAVAILABLE":
        hint = unreachable_hint(
            exc.message,
            args.target,
            see=f"--target or {TARGET_ENV}",
            tls_flags="--tls or --tls-ca",
            tls=bool(getattr(args, "tls", False) or getattr(args, "tls_ca", None)),
            client_cert=bool(getattr(args, "tls_cert", None)),
        )
        text += f" ({hint})"
    waited: str | None = getattr(args, "waiting_on", None)
    if waited and code not in ("DEADLINE_EXCEEDED", "UNAVAILABLE", "CANCELLED"):
        waited = None  # the call failed, not the wait
    if waited:
        text += f"; {_still_running(waited)}"  # a wait that ended says which run it waited for
    if getattr(args, "json", False):
        body = error_json(exc)
        if waited:  # and so does the JSON: a script needs the run, not a line to parse
            body["metadata"] = {**exc.metadata, "run_id": waited}
        print_json({"error": body})
    return fail(f"{head}: {text}", EXIT_CALL)


_NOTHING_ANSWERED = ("Connection refused", "timed out")
"""Words of a transport error that no server took the connection: TLS is not the question then."""


def unreachable_hint(
    message: str, target: str, *, see: str, tls_flags: str, tls: bool, client_cert: bool
) -> str:
    """What to check when a call to `target` failed UNAVAILABLE in the transport (`message`, its
    words), for every command (`health` included): whether a server runs there, and whether TLS
    is the cause. A server hangs up a handshake it refuses: a TLS one a plaintext client's, an
    mTLS one a client's without an acceptable certificate (of another CA, expired). That reaches
    the client as a closed socket, and read as a server down (audits). `see`: where the target
    comes from; `tls_flags`: the flags that turn TLS on; `tls`, `client_cert`: what the call used."""
    hint = f"is a server running at {target}? see {see}"
    if target.startswith("unix:") or any(words in message for words in _NOTHING_ANSWERED):
        return hint  # a Unix socket is the plaintext health socket; the others had no handshake
    if client_cert:
        return hint + "; or did it refuse --tls-cert? (its CA, its expiry)"
    if tls:
        return hint + "; or does it ask for a client certificate (--tls-cert)?"
    return hint + f"; or does it serve TLS? ({tls_flags})"


def _still_running(run_id: str) -> str:
    return f"run {run_id} may still be running (runservice watch {run_id})"


def _excerpt(exc: UnicodeEncodeError, around: int = 40) -> str:
    """The text that failed to encode, cut to `around` characters either side of the failure."""
    text = exc.object
    start, end = max(0, exc.start - around), min(len(text), exc.end + around)
    return ("..." if start else "") + repr(text[start:end]) + ("..." if end < len(text) else "")


def writes_utf8(stream: Any) -> bool:
    """Whether `stream` encodes text as UTF-8 (a terminal or pipe of the C locale may not)."""
    encoding = getattr(stream, "encoding", None)
    if not isinstance(encoding, str):
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """`value` as JSON on stdout (`indent=None`: one line, for a stream of values). Characters
    are written as themselves where stdout is UTF-8, else as JSON escapes (`\\u00b0`: the same
    JSON, which any encoding can carry; an ASCII stdout failed on the first `°C`)."""
    text = json.dumps(value, indent=indent, ensure_ascii=not writes_utf8(sys.stdout), default=str)
    print(text, flush=True)
