/**
 * Following a run's events to its end, across reconnects: the Node counterpart of the Python
 * clients' `follow`. A Watch ends with `endOfStream` once the run is terminal; any other end (a
 * drain's UNAVAILABLE, a connection cut or recycled, a proxy's idle timeout ending the call OK)
 * means "reopen from the last sequence you saw". That is done here, with a backoff, so nothing
 * is lost and nothing is seen twice. With `attemptTimeoutMs` each Watch also ends at its own
 * deadline and is reopened at once, as the Python clients' `attempt_timeout` does. The Watch
 * that brings `endOfStream` is read on to its status OK, as the server expects of a call that
 * ended normally.
 *
 *   for await (const event of follow(client, runId)) console.log(event.sequence, event.type);
 */
import * as grpc from "@grpc/grpc-js";

import type { RunEvent__Output } from "../generated/runservice/v1/RunEvent";
import type { RunServiceClient } from "../generated/runservice/v1/RunService";
import type { WatchResponse__Output } from "../generated/runservice/v1/WatchResponse";
import { decodeError } from "./client";

export interface FollowOptions {
  /** Events after this sequence (0: from the first). int64 as a string or a number. */
  afterSequence?: string | number;
  /** Give up after this long with no message (heartbeats count), throwing the last error that
   * ended an attempt (or an Error saying so when none did): between attempts, and within one
   * whose server hangs (the Watch is cancelled then). Time your loop spends on an event does not
   * count. None by default: a watch of a run suspended for days is quiet, not broken. */
  giveUpAfterMs?: number;
  /** Bounds each Watch attempt: its deadline is this many ms after it opens, and when that
   * deadline ends it (DEADLINE_EXCEEDED without runservice's ErrorInfo, the deadline passed) the
   * Watch is reopened at once from the last sequence seen, as after any other normal end. Lets a
   * proxy or load balancer that ends long calls, or a need to re-resolve, be met on your terms.
   * At least MIN_ATTEMPT_MS (100): shorter, the reopens would hammer the server. The server
   * heartbeats within each attempt's deadline (at half the time it leaves), so `giveUpAfterMs`
   * counts only silence. None by default: one Watch for as long as the connection holds. */
  attemptTimeoutMs?: number;
  /** Call options of each Watch, asked for afresh per attempt. A `deadline` here is per attempt
   * too, reopened when it passes like `attemptTimeoutMs` (with both, the earlier one bounds the
   * attempt). A deadline that has already passed when an attempt opens (a fixed Date, returned
   * again) is the caller's time being up: its DEADLINE_EXCEEDED is thrown. grpc-js CallOptions
   * carry no metadata: for the bearer token use ClientOptions.token, for other metadata an
   * interceptor on the client. Per-call `interceptors` replace the client's (requestIdInterceptor,
   * tokenInterceptor): include them if you pass some. */
  callOptions?: () => grpc.CallOptions;
}

const FIRST_BACKOFF_MS = 100;
/** The shortest `attemptTimeoutMs` (see FollowOptions). */
export const MIN_ATTEMPT_MS = 100;
const MAX_BACKOFF_MS = 5000;

/** The domain of the ErrorInfo every status runservice sends carries. */
const DOMAIN = "runservice.dev";

/** True when a Watch that failed with `error` should be reopened: UNAVAILABLE (a drain, a
 * connection cut), or INTERNAL / UNKNOWN that the server did not send (no runservice ErrorInfo):
 * a proxy's reset of the stream of a server that died (nginx sends RST_STREAM INTERNAL_ERROR);
 * and the server's UNAUTHENTICATED TOKEN_REVOKED. */
export function shouldReconnect(error: grpc.ServiceError): boolean {
  if (error.code === grpc.status.UNAVAILABLE) return true;
  const info = decodeError(error).errorInfo;
  // A reload of the server's tokens ended the streams of a token that is gone or whose scope
  // changed: reopened with the same token, the watch goes on if it still grants the run, and
  // fails with the server's answer (TOKEN_INVALID, NOT_FOUND) if not.
  if (error.code === grpc.status.UNAUTHENTICATED) return info?.domain === DOMAIN && info.reason === "TOKEN_REVOKED";
  if (error.code !== grpc.status.INTERNAL && error.code !== grpc.status.UNKNOWN) return false;
  return info?.domain !== DOMAIN;
}

/** Node's timers may fire a millisecond or so before Date.now() reaches the deadline they were
 * set for: a DEADLINE_EXCEEDED this close to the attempt's deadline is that deadline's. */
const DEADLINE_SLACK_MS = 50;

/** Milliseconds since the epoch of a grpc-js deadline (Infinity: none). */
function deadlineMs(deadline: grpc.Deadline | undefined): number {
  if (deadline === undefined) return Infinity;
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** True when `error` is the attempt's own deadline ending it: DEADLINE_EXCEEDED that the server
 * did not send (no runservice ErrorInfo), at or after a deadline that was still ahead when the
 * attempt opened. */
function endedByAttemptDeadline(error: grpc.ServiceError, deadline: number, opened: number): boolean {
  if (error.code !== grpc.status.DEADLINE_EXCEEDED || !(deadline > opened)) return false;
  if (Date.now() < deadline - DEADLINE_SLACK_MS) return false;
  return decodeError(error).errorInfo?.domain !== DOMAIN;
}

/** Every event of the run after `afterSequence`, in order, until the run is terminal. Errors
 * the server sends other than UNAVAILABLE (NOT_FOUND, PERMISSION_DENIED, ...) are thrown:
 * reopening would fail the same way (see `shouldReconnect`). An attempt ended by its own
 * deadline (`attemptTimeoutMs`, or a deadline of `callOptions`) is reopened at once. */
export async function* follow(
  client: RunServiceClient,
  runId: string,
  options: FollowOptions = {},
): AsyncGenerator<RunEvent__Output, void, undefined> {
  const { attemptTimeoutMs } = options;
  if (attemptTimeoutMs !== undefined && !(Number.isFinite(attemptTimeoutMs) && attemptTimeoutMs >= MIN_ATTEMPT_MS)) {
    throw new RangeError(
      `attemptTimeoutMs must be a positive number of milliseconds, at least ${MIN_ATTEMPT_MS}, not ${attemptTimeoutMs}`,
    );
  }
  const { giveUpAfterMs } = options;
  let after = BigInt(options.afterSequence ?? 0);
  let failures = 0;
  let heard = Date.now();
  let lastError: unknown = null;
  const giveUp = () => lastError ?? new Error(`no message about run ${runId} for ${giveUpAfterMs} ms`);
  const quietFor = () => Date.now() - heard;
  for (;;) {
    if (giveUpAfterMs !== undefined && quietFor() >= giveUpAfterMs) throw giveUp();
    const callOptions = { ...options.callOptions?.() };
    const opened = Date.now();
    const attemptDeadline = Math.min(
      deadlineMs(callOptions.deadline),
      attemptTimeoutMs === undefined ? Infinity : opened + attemptTimeoutMs,
    );
    if (attemptDeadline !== Infinity) callOptions.deadline = attemptDeadline;
    const call = client.Watch({ runId, afterSequence: after.toString() }, callOptions);
    // A server that hangs (stopped, or its machine gone without a reset) keeps the call open and
    // silent until keepalive gives up on the connection, 40 s later: the silence limit ends the
    // attempt itself. It counts only while we wait for the server, not while the consumer holds
    // an event (a slow consumer leaves the server's messages waiting in the call's buffer).
    let silence: NodeJS.Timeout | undefined;
    let silent = false;
    const listen = () => {
      if (giveUpAfterMs === undefined) return;
      silence = setTimeout(
        () => {
          silent = true;
          call.cancel();
        },
        giveUpAfterMs - quietFor(),
      );
    };
    let ended = false;
    let attemptOver = false;
    try {
      listen();
      for await (const message of call as AsyncIterable<WatchResponse__Output>) {
        clearTimeout(silence);
        if (ended) break; // nothing comes after the end: a server that sent more is not followed
        failures = 0;
        for (const event of message.events) {
          const sequence = BigInt(event.sequence);
          if (sequence <= after) continue; // replayed after a reconnect: seen already
          after = sequence;
          yield event;
        }
        heard = Date.now();
        // Read on to the call's own end (status OK, at once): cancelling it here made every
        // watch that ended normally a CANCELLED call in the server's metrics and access log.
        ended = message.endOfStream;
        listen();
      }
    } catch (error) {
      if (ended) return; // the run's end was seen: how the call then ended changes nothing
      if (silent) throw giveUp();
      attemptOver = endedByAttemptDeadline(error as grpc.ServiceError, attemptDeadline, opened);
      if (!attemptOver && !shouldReconnect(error as grpc.ServiceError)) throw error;
      lastError = error;
    } finally {
      clearTimeout(silence);
      call.cancel(); // a no-op once the call ended; stops it when the consumer left early
    }
    if (ended) return;
    if (attemptOver) {
      failures = 0; // the attempt ran its course: a normal end, reopened at once
      continue;
    }
    const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** failures++);
    let pause = ceiling / 2 + Math.random() * (ceiling / 2);
    // Not past the give-up time: a backoff grown to 5 s would give up that much late.
    if (giveUpAfterMs !== undefined) pause = Math.min(pause, giveUpAfterMs - quietFor());
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}
