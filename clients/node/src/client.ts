/**
 * A typed @grpc/grpc-js client of runservice.v1.RunService, built at runtime from the .proto
 * files by @grpc/proto-loader and typed by the interfaces proto-loader-gen-types generated
 * into ../generated (same contract, same load options), plus decoding of the rich error
 * details every runservice error carries (google.rpc.Status in `grpc-status-details-bin`,
 * read with the vendored protos/google/rpc files).
 *
 *   const client = createClient("127.0.0.1:50051");
 *   const res = await unary<StartResponse__Output>((cb) =>
 *     client.Start({ workflowId: "echo", inputData: toValue({ count: 1 }), wait: true }, deadline(10), cb));
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as protobuf from "protobufjs";

import type { BadRequest__Output } from "../generated/google/rpc/BadRequest";
import type { ErrorInfo__Output } from "../generated/google/rpc/ErrorInfo";
import type { Status__Output } from "../generated/google/rpc/Status";
import type { ProtoGrpcType } from "../generated/run_service";
import type { RunServiceClient } from "../generated/runservice/v1/RunService";

/** Options the generated types were made with (scripts/gen-types.mjs): keep them in step. */
export const LOAD_OPTIONS: protoLoader.Options = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The repository's protos/ folder (override with RUNSERVICE_PROTOS). */
export function protoRoot(): string {
  if (process.env.RUNSERVICE_PROTOS) return process.env.RUNSERVICE_PROTOS;
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    const candidate = join(dir, "protos");
    if (existsSync(join(candidate, "runservice", "v1", "run_service.proto"))) return candidate;
  }
  throw new Error("protos/ not found above " + __dirname + "; set RUNSERVICE_PROTOS");
}

export interface ClientOptions {
  /** TLS credentials; plaintext when omitted. */
  credentials?: grpc.ChannelCredentials;
  /** Extra channel options (override the defaults below). */
  channelOptions?: grpc.ChannelOptions;
  /** Bearer token of a server that requires one (`--tokens-file`, `RUNSERVICE_TOKENS`): sent as
   * `authorization: Bearer TOKEN` with every call, unary and streaming (tokenInterceptor).
   * Non-empty printable ASCII without spaces, as the server's tokens; anything else (a trailing
   * newline read from a file) throws at construction instead of failing every call. */
  token?: string;
}

/** The .proto file `file` (under protoRoot()) loaded with the generated types' options. */
export function loadContract<T>(file: string): T {
  const definition = protoLoader.loadSync(file, { ...LOAD_OPTIONS, includeDirs: [protoRoot()] });
  return grpc.loadPackageDefinition(definition) as unknown as T;
}

/** A generated service client's constructor, as proto-loader's loaded package holds it. */
export type ServiceConstructor<C> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => C;

/** The calls that take a `requestId` and that the service config retries on UNAVAILABLE. */
const IDEMPOTENT_CALLS = new Set(
  [
    "RunService/Start",
    "RunService/Resume",
    "RunService/Cancel",
    "RunService/Restart",
    "RunService/DeleteRun",
    "RunService/TimeTravel",
    "RunService/ForkRun",
    "ScheduleService/TriggerSchedule",
  ].map((name) => `/runservice.v1.${name}`),
);

const START = "/runservice.v1.RunService/Start";
const CREATE_RUN = "/runservice.v1.RunService/CreateRun";
const FORK_RUN = "/runservice.v1.RunService/ForkRun";

/** What requestIdInterceptor filled in a request, and where a failed call's error carries it:
 * the request's field and the key of the error's `metadata` (the .proto name, as the Python
 * clients' errors carry `request_id`). */
const FILLED_FIELDS = [
  ["requestId", "request_id"],
  ["runId", "run_id"],
  ["newRunId", "new_run_id"],
] as const;

/** The request fields requestIdInterceptor filled in a failed call (RichError.retryWith). */
export type FilledIds = Partial<Record<(typeof FILLED_FIELDS)[number][0], string>>;

/**
 * Makes gRPC's retries safe: a call of IDEMPOTENT_CALLS without a `requestId` gets a fresh UUID
 * (as the Python clients do), so a retry after a lost reply returns the first outcome instead of
 * acting twice (a second run). It is filled once, before gRPC serializes the message, so every
 * retry of the call carries the same id. A Start with neither `requestId` nor `runId` also gets a
 * time-ordered `runId` (UUIDv7, like the ids CreateRun gives), and a ForkRun with neither
 * `requestId` nor `newRunId` a time-ordered `newRunId`: otherwise the server would derive the
 * new run's id from the random request id, scattering rows over its indexes (README, "Run ids").
 * A CreateRun without `runId` gets one too: it has no `requestId`, and a retry would reserve a
 * second run.
 *
 * gRPC's retries end after about 1.4 s: a call that fails after them (a server restart that
 * outlasted them) may still have acted, and only the caller can retry it later. So the error of
 * a call whose request was filled here carries what was filled in its `metadata` (`request_id`,
 * `run_id`, `new_run_id`; decodeError reads them into `retryWith`): the caller's retry with them
 * returns the first outcome, where one without them would start a second run.
 *
 * connect() installs it on every client. grpc-js lets call options' `interceptors` replace the
 * client's: if you pass your own per call, include this one.
 */
export const requestIdInterceptor: grpc.Interceptor = (options, nextCall) => {
  const path = options.method_definition.path;
  if (path !== CREATE_RUN && !IDEMPOTENT_CALLS.has(path)) return new grpc.InterceptingCall(nextCall(options));
  let filled: FilledIds = {};
  return new grpc.InterceptingCall(nextCall(options), {
    start: (metadata, _listener, next) =>
      next(metadata, {
        onReceiveStatus: (status, next) => next(status.code === grpc.status.OK ? status : withFilled(status, filled)),
      }),
    sendMessage: (message: Record<string, unknown>, next) => {
      if (path === CREATE_RUN) {
        // No requestId there: a runId of our own makes a retry get the run the first one reserved.
        if (!message.runId) filled = { runId: uuidv7() };
      } else if (!message.requestId) {
        filled = { requestId: randomUUID() };
        if (path === START && !message.runId) filled.runId = uuidv7();
        if (path === FORK_RUN && !message.newRunId) filled.newRunId = uuidv7();
      }
      next({ ...message, ...filled });
    },
  });
};

/** `status` with the ids in `filled` added to its metadata (a copy: gRPC may hold the original). */
function withFilled(status: grpc.StatusObject, filled: FilledIds): grpc.StatusObject {
  if (Object.keys(filled).length === 0) return status;
  const metadata = status.metadata.clone();
  for (const [field, key] of FILLED_FIELDS) {
    const value = filled[field];
    if (value !== undefined) metadata.set(key, value);
  }
  return { ...status, metadata };
}

/** Throws a clear Error for a token gRPC metadata cannot carry or the server could never accept:
 * empty, or with anything but printable ASCII without spaces (as the server checks its tokens). */
export function checkToken(token: string): void {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new Error("the token must be non-empty printable ASCII, no spaces (a trailing newline?)");
  }
}

/**
 * Sends `authorization: Bearer <token>` with every call it intercepts, unary or streaming (the
 * metadata is set when the call starts, before any message). The token is checked first
 * (checkToken), so a bad one throws here, not on each call.
 *
 * connect() installs it on every client when ClientOptions.token is given. grpc-js lets call
 * options' `interceptors` replace the client's: if you pass your own per call, include this one
 * (and requestIdInterceptor), or the call goes without the token.
 */
export function tokenInterceptor(token: string): grpc.Interceptor {
  checkToken(token);
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set("authorization", value);
        next(metadata, listener);
      },
    });
}

/** A UUID version 7 (RFC 9562): Unix time in milliseconds in the first 48 bits, then random. */
export function uuidv7(): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(Date.now(), 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A client of `Service` on a channel set up the way runservice expects: the published service
 * config (protos/runservice/v1/service_config.json: deadlines of short calls, retries on
 * UNAVAILABLE), request ids filled for the retried calls (requestIdInterceptor), a keepalive
 * ping every 30 s (the server accepts one per 10 s) and replies up to the server's 8 MiB limit,
 * and with `options.token` the bearer token on every call (tokenInterceptor; a token gRPC cannot
 * send throws here). Every runservice client (createClient, createScheduleClient) is built here
 * so they behave alike.
 */
export function connect<C>(Service: ServiceConstructor<C>, target: string, options: ClientOptions = {}): C {
  const interceptors = [requestIdInterceptor];
  if (options.token !== undefined) interceptors.push(tokenInterceptor(options.token));
  const serviceConfig = readFileSync(join(protoRoot(), "runservice", "v1", "service_config.json"), "utf8");
  return new Service(target, options.credentials ?? grpc.credentials.createInsecure(), {
    "grpc.service_config": JSON.stringify(JSON.parse(serviceConfig)),
    "grpc.enable_retries": 1,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    // A server back after a restart is reached within 5 s, not after a backoff grown to 120 s.
    "grpc.initial_reconnect_backoff_ms": 500,
    "grpc.max_reconnect_backoff_ms": 5_000,
    "grpc.max_receive_message_length": 8 * 1024 * 1024,
    ...options.channelOptions,
    interceptors,
  });
}

/** A RunService client (channel set up by `connect`). */
export function createClient(target: string, options: ClientOptions = {}): RunServiceClient {
  const loaded = loadContract<ProtoGrpcType>("runservice/v1/run_service.proto");
  return connect(loaded.runservice.v1.RunService, target, options);
}

/** Call options with a deadline `seconds` from now. */
export function deadline(seconds: number): grpc.CallOptions {
  return { deadline: new Date(Date.now() + seconds * 1000) };
}

/** A unary call as a promise: `await unary<XResponse__Output>((cb) => client.X(request, cb))`. */
export function unary<T>(invoke: (callback: grpc.requestCallback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    invoke((error, response) => (error ? reject(error) : resolve(response as T)));
  });
}

/** What a runservice error says, decoded from its `grpc-status-details-bin` trailer. */
export interface RichError {
  code: grpc.status;
  message: string;
  status: Status__Output | null;
  errorInfo: ErrorInfo__Output | null;
  badRequest: BadRequest__Output | null;
  /** The ids the client filled in the request (requestIdInterceptor): empty when it filled
   * none, or you gave them. A call that failed UNAVAILABLE or DEADLINE_EXCEEDED may have acted:
   * retry it with `{ ...request, ...retryWith }` to get its first outcome, not a second run. */
  retryWith: FilledIds;
}

let statusRoot: protobuf.Root | null = null;

function errorTypes(): protobuf.Root {
  if (statusRoot === null) {
    const root = new protobuf.Root();
    const protos = protoRoot();
    // google/protobuf/* resolve to protobufjs' bundled well-known types.
    root.resolvePath = (_origin, target) => join(protos, target);
    root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
    statusRoot = root;
  }
  return statusRoot;
}

const CONVERSION: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true };

/** What requestIdInterceptor put in an error's metadata (see withFilled). */
function filledIds(metadata: grpc.Metadata | undefined): FilledIds {
  const ids: FilledIds = {};
  for (const [field, key] of FILLED_FIELDS) {
    const [value] = metadata?.get(key) ?? [];
    if (typeof value === "string") ids[field] = value;
  }
  return ids;
}

/** The status code, message, ErrorInfo, BadRequest and filled ids of a failed call. */
export function decodeError(error: grpc.ServiceError): RichError {
  const out: RichError = {
    code: error.code,
    message: error.details,
    status: null,
    errorInfo: null,
    badRequest: null,
    retryWith: filledIds(error.metadata),
  };
  const [raw] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!(raw instanceof Buffer)) return out;
  const root = errorTypes();
  const statusType = root.lookupType("google.rpc.Status");
  // protobufjs' bundled Any keeps the .proto name type_url; be lenient about camelCase too.
  type Decoded = { code: number; message: string; details: { type_url?: string; typeUrl?: string; value: Uint8Array }[] };
  let decodedStatus: Decoded;
  try {
    decodedStatus = statusType.toObject(statusType.decode(new Uint8Array(raw)), CONVERSION) as Decoded;
  } catch {
    return out; // not a google.rpc.Status (not from a runservice server): the plain status
  }
  const status: Status__Output = {
    code: decodedStatus.code,
    message: decodedStatus.message,
    details: decodedStatus.details.map((d) => ({
      type_url: d.type_url ?? d.typeUrl ?? "",
      value: Buffer.from(d.value),
    })),
  };
  out.status = status;
  out.message = status.message || out.message;
  for (const detail of status.details) {
    const typeName = detail.type_url.slice(detail.type_url.lastIndexOf("/") + 1);
    // Only the two runservice sends are decoded: a detail of another type (a proxy or mesh may
    // add one) stays in `status.details`, undecoded, and never hides the rest.
    if (typeName !== "google.rpc.ErrorInfo" && typeName !== "google.rpc.BadRequest") continue;
    const type = root.lookupType(typeName);
    let decoded: unknown;
    try {
      decoded = type.toObject(type.decode(new Uint8Array(detail.value)), CONVERSION);
    } catch {
      continue; // a malformed detail: leave it out
    }
    if (typeName === "google.rpc.ErrorInfo") out.errorInfo = decoded as ErrorInfo__Output;
    else out.badRequest = decoded as BadRequest__Output;
  }
  return out;
}
