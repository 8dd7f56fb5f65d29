/**
 * Following a run's events to its end, across reconnects: the Node counterpart of the Python
 * clients' `follow`. A Watch ends with `endOfStream` once the run is terminal; any other end (a
 * drain's UNAVAILABLE, a connection cut or recycled, a proxy's idle timeout ending the call OK)
 * means "reopen from the last sequence you saw". That is done here, with a backoff, so nothing
 * is lost and nothing is seen twice.
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
  /** Give up, raising the last error, after this long with no message (heartbeats count);
   * none by default: a watch of a run suspended for days is quiet, not broken. */
  giveUpAfterMs?: number;
  /** Call options of each Watch (metadata is sent as is; a deadline bounds each attempt). */
  callOptions?: () => grpc.CallOptions;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

/** The domain of the ErrorInfo every status runservice sends carries. */
const DOMAIN = "runservice.dev";

/** True when a Watch that failed with `error` should be reopened: UNAVAILABLE (a drain, a
 * connection cut), or INTERNAL / UNKNOWN that the server did not send (no runservice ErrorInfo):
 * a proxy's reset of the stream of a server that died (nginx sends RST_STREAM INTERNAL_ERROR). */
export function shouldReconnect(error: grpc.ServiceError): boolean {
  if (error.code === grpc.status.UNAVAILABLE) return true;
  if (error.code !== grpc.status.INTERNAL && error.code !== grpc.status.UNKNOWN) return false;
  return decodeError(error).errorInfo?.domain !== DOMAIN;
}

/** Every event of the run after `afterSequence`, in order, until the run is terminal. Errors
 * the server sends other than UNAVAILABLE (NOT_FOUND, PERMISSION_DENIED, ...) are thrown:
 * reopening would fail the same way (see `shouldReconnect`). */
export async function* follow(
  client: RunServiceClient,
  runId: string,
  options: FollowOptions = {},
): AsyncGenerator<RunEvent__Output, void, undefined> {
  let after = BigInt(options.afterSequence ?? 0);
  let failures = 0;
  let heard = Date.now();
  let lastError: unknown = null;
  for (;;) {
    const call = client.Watch({ runId, afterSequence: after.toString() }, options.callOptions?.() ?? {});
    let finished = false;
    try {
      for await (const message of call as AsyncIterable<WatchResponse__Output>) {
        heard = Date.now();
        failures = 0;
        for (const event of message.events) {
          const sequence = BigInt(event.sequence);
          if (sequence <= after) continue; // replayed after a reconnect: seen already
          after = sequence;
          yield event;
        }
        if (message.endOfStream) {
          finished = true;
          break;
        }
      }
    } catch (error) {
      if (!shouldReconnect(error as grpc.ServiceError)) throw error;
      lastError = error;
    } finally {
      call.cancel(); // a no-op once the call ended; stops it when the consumer left early
    }
    if (finished) return;
    if (options.giveUpAfterMs !== undefined && Date.now() - heard > options.giveUpAfterMs) {
      throw lastError ?? new Error(`no message about run ${runId} for ${options.giveUpAfterMs} ms`);
    }
    const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** failures++);
    await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + Math.random() * (ceiling / 2)));
  }
}
