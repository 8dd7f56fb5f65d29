/**
 * The Node.js caller's view, against a real runservice (RUNSERVICE_TARGET, started by
 * tests/test_node_client.py with the workflows of tests/workflows.py and "nightly"): typed calls through
 * the generated types, JSON through toValue/fromValue, streams, and decoded error details.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { after, test } from "node:test";

import * as grpc from "@grpc/grpc-js";
import * as protobuf from "protobufjs";

import type { CancelResponse__Output } from "../generated/runservice/v1/CancelResponse";
import type { CreateRunResponse__Output } from "../generated/runservice/v1/CreateRunResponse";
import type { ForkRunResponse__Output } from "../generated/runservice/v1/ForkRunResponse";
import type { GetRunResponse__Output } from "../generated/runservice/v1/GetRunResponse";
import type { GetWorkflowResponse__Output } from "../generated/runservice/v1/GetWorkflowResponse";
import type { ListRunsResponse__Output } from "../generated/runservice/v1/ListRunsResponse";
import type { ListWorkflowsResponse__Output } from "../generated/runservice/v1/ListWorkflowsResponse";
import type { ResumeResponse__Output } from "../generated/runservice/v1/ResumeResponse";
import type { RunEvent__Output } from "../generated/runservice/v1/RunEvent";
import type { StartResponse__Output } from "../generated/runservice/v1/StartResponse";
import type { StreamResponse__Output } from "../generated/runservice/v1/StreamResponse";
import type { WatchResponse__Output } from "../generated/runservice/v1/WatchResponse";
import { createClient, deadline, decodeError, protoRoot, unary } from "../src/client";
import { follow, type FollowOptions } from "../src/follow";
import { fromValue, type Json, toValue } from "../src/value";

const target = process.env.RUNSERVICE_TARGET;
if (!target) throw new Error("set RUNSERVICE_TARGET to a running runservice (host:port)");
const client = createClient(target);
after(() => client.close());

/** Every message of a server stream, until the server ends it. */
function drain<T>(stream: grpc.ClientReadableStream<T>, onMessage?: (message: T) => void): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const messages: T[] = [];
    stream.on("data", (message: T) => {
      messages.push(message);
      onMessage?.(message);
    });
    stream.on("error", reject);
    stream.on("end", () => resolve(messages));
  });
}

function sequences(events: RunEvent__Output[]): number[] {
  return events.map((event) => Number(event.sequence)); // int64 arrives as a string (longs: String)
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

test("lists and describes workflows", async () => {
  const listed = await unary<ListWorkflowsResponse__Output>((cb) => client.ListWorkflows({}, deadline(10), cb));
  assert.deepEqual(
    listed.workflows.map((wf) => wf.id),
    ["approval", "echo", "nightly", "shapes"],
  );
  const { workflow } = await unary<GetWorkflowResponse__Output>((cb) =>
    client.GetWorkflow({ workflowId: "approval" }, deadline(10), cb),
  );
  assert.ok(workflow);
  assert.equal(workflow.description, "Asks a human");
  const ask = workflow.steps.find((step) => step.id === "ask");
  assert.ok(ask?.canSuspend);
  const schema = fromValue(workflow.inputSchema) as { type: string; properties: Record<string, { type: string }> };
  assert.equal(schema.type, "object");
  assert.equal(schema.properties.count.type, "integer");
  assert.deepEqual(
    workflow.stepGraph.map((node) => [node.kind, node.id]),
    [
      ["STEP_GRAPH_NODE_KIND_STEP", "bump"],
      ["STEP_GRAPH_NODE_KIND_STEP", "ask"],
      ["STEP_GRAPH_NODE_KIND_STEP", "report"],
    ],
  );
});

test("starts without wait, then watches the run to its end", async () => {
  const { run } = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "echo", inputData: toValue({ count: 2 }), requestId: "node-echo-1" }, deadline(10), cb),
  );
  assert.ok(run?.runId);
  const messages = await drain<WatchResponse__Output>(client.Watch({ runId: run.runId, afterSequence: "0" }));
  const events = messages.flatMap((message) => message.events);
  assert.deepEqual(sequences(events), range(1, events.length));
  assert.equal(events[0].type, "RUN_EVENT_TYPE_WORKFLOW_START");
  assert.equal(events.at(-1)?.type, "RUN_EVENT_TYPE_WORKFLOW_FINISH");
  assert.ok(messages.at(-1)?.endOfStream, "a finished Watch ends with end_of_stream");

  const fetched = await unary<GetRunResponse__Output>((cb) => client.GetRun({ runId: run.runId }, deadline(10), cb));
  assert.equal(fetched.run?.status, "RUN_STATUS_SUCCESS");
  assert.deepEqual(fromValue(fetched.run?.result), { count: 3 });

  // The same request_id again: the first outcome, not ALREADY_EXISTS.
  const again = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "echo", runId: run.runId, inputData: toValue({ count: 2 }), requestId: "node-echo-1" }, deadline(10), cb),
  );
  assert.equal(again.run?.runId, run.runId);
});

test("starts with wait and gets a suspended run, then resumes it", async () => {
  const started = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "approval", inputData: toValue({ count: 1 }), wait: true }, deadline(20), cb),
  );
  assert.equal(started.run?.status, "RUN_STATUS_SUSPENDED");
  assert.deepEqual(
    started.run?.suspended.map((path) => path.ids),
    [["ask"]],
  );
  const ask = started.run?.steps.find((step) => step.path?.ids.join(".") === "ask");
  assert.deepEqual(fromValue(ask?.suspendPayload), { question: "approve 2?" });

  const resumed = await unary<ResumeResponse__Output>((cb) =>
    client.Resume({ runId: started.run?.runId, step: ["ask"], resumeData: toValue({ approved: false }), wait: true }, deadline(20), cb),
  );
  assert.equal(resumed.run?.status, "RUN_STATUS_SUCCESS");
  assert.deepEqual(fromValue(resumed.run?.result), { verdict: "rejected" });
});

test("streams a run's events until it settles", async () => {
  const messages = await drain<StreamResponse__Output>(
    client.Stream({ start: { workflowId: "echo", inputData: toValue({ count: 41 }) } }),
  );
  const events = messages.flatMap((message) => message.events);
  assert.deepEqual(sequences(events), range(1, events.length));
  assert.equal(events.at(-1)?.type, "RUN_EVENT_TYPE_WORKFLOW_FINISH");
  const last = messages.at(-1);
  assert.ok(last?.endOfStream);
  assert.equal(last?.run?.status, "RUN_STATUS_SUCCESS");
  assert.deepEqual(fromValue(last?.run?.result), { count: 42 });
});

test("watches one run across a suspend and a resume", async () => {
  const created = await unary<CreateRunResponse__Output>((cb) =>
    client.CreateRun({ workflowId: "approval" }, deadline(10), cb),
  );
  const runId = created.run?.runId;
  assert.ok(runId);
  const seen: { resumed?: Promise<ResumeResponse__Output> } = {};
  const watching = drain<WatchResponse__Output>(client.Watch({ runId, afterSequence: "0" }), (message) => {
    const suspended = message.events.some(
      (event) => event.type === "RUN_EVENT_TYPE_WORKFLOW_FINISH" && event.runStatus === "RUN_STATUS_SUSPENDED",
    );
    if (suspended && seen.resumed === undefined) {
      seen.resumed = unary<ResumeResponse__Output>((cb) =>
        client.Resume({ runId, resumeData: toValue({ approved: true }), wait: true }, deadline(20), cb),
      );
    }
  });
  await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "approval", runId, inputData: toValue({ count: 1 }) }, deadline(10), cb),
  );
  const messages = await watching;
  assert.ok(seen.resumed, "the watch saw the suspension");
  assert.equal((await seen.resumed).run?.status, "RUN_STATUS_SUCCESS");
  const events = messages.flatMap((message) => message.events);
  assert.deepEqual(sequences(events), range(1, events.length), "nothing lost or repeated across the resume");
  const finishes = events.filter((event) => event.type === "RUN_EVENT_TYPE_WORKFLOW_FINISH");
  assert.deepEqual(
    finishes.map((event) => event.runStatus),
    ["RUN_STATUS_SUSPENDED", "RUN_STATUS_SUCCESS"],
  );
  const starts = events.filter((event) => event.type === "RUN_EVENT_TYPE_WORKFLOW_START");
  assert.deepEqual(
    starts.map((event) => event.cause),
    ["EXECUTION_CAUSE_START", "EXECUTION_CAUSE_RESUME"],
    "each execution says what began it",
  );
  assert.ok(messages.at(-1)?.endOfStream);
  assert.ok(messages.every((m) => m.events.length > 0 || BigInt(m.watermarkSequence) >= 0n));
});

/** RUNSERVICE_RETRY_PROXY: a proxy to the server that loses the first reply of each Start,
 * CreateRun, DeleteRun and Restart (tests/edge.py), as a server draining mid-call does. */
function retryProxy(): string {
  const proxy = process.env.RUNSERVICE_RETRY_PROXY;
  if (!proxy) throw new Error("set RUNSERVICE_RETRY_PROXY (tests/test_node_client.py does)");
  return proxy;
}

test("follow reopens a cut Watch from its last sequence: nothing lost, nothing twice", async () => {
  // Through the proxy, the first Watch ends UNAVAILABLE after one message, the second OK at once.
  const proxied = createClient(process.env.RUNSERVICE_RETRY_PROXY!);
  try {
    const { run } = await unary<StartResponse__Output>((cb) =>
      client.Start({ workflowId: "approval", inputData: toValue({ count: 1 }), wait: true }, deadline(10), cb),
    );
    assert.equal(run?.status, "RUN_STATUS_SUSPENDED");
    const events: RunEvent__Output[] = [];
    const following = (async () => {
      for await (const event of follow(proxied, run!.runId)) events.push(event);
    })();
    while (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await unary((cb) =>
      client.Resume({ runId: run!.runId, resumeData: toValue({ approved: true }) }, deadline(10), cb),
    );
    await following;
    assert.deepEqual(sequences(events), range(1, events.length));
    assert.equal(events.at(-1)?.type, "RUN_EVENT_TYPE_WORKFLOW_FINISH");
    assert.equal(events.at(-1)?.runStatus, "RUN_STATUS_SUCCESS");
  } finally {
    proxied.close();
  }
});

/** Follows a suspended approval run with `options` until `attempts()` reaches `reopened`, then
 * resumes it and returns every event follow delivered to the run's end. */
async function followAcrossAttempts(
  options: FollowOptions,
  attempts: () => number,
  reopened: number,
): Promise<RunEvent__Output[]> {
  const { run } = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "approval", inputData: toValue({ count: 1 }), wait: true }, deadline(10), cb),
  );
  assert.equal(run?.status, "RUN_STATUS_SUSPENDED");
  const events: RunEvent__Output[] = [];
  let settled = false;
  const following = (async () => {
    for await (const event of follow(client, run!.runId, options)) events.push(event);
  })().finally(() => {
    settled = true;
  });
  while (attempts() < reopened && !settled) await new Promise((resolve) => setTimeout(resolve, 20));
  if (settled) await following; // ended before the run did: throws follow's error
  assert.ok(events.length > 0);
  await unary((cb) => client.Resume({ runId: run!.runId, resumeData: toValue({ approved: true }) }, deadline(10), cb));
  await following;
  return events;
}

function assertWholeRun(events: RunEvent__Output[]): void {
  assert.deepEqual(sequences(events), range(1, events.length), "every event once, in order");
  assert.deepEqual(
    events.filter((event) => event.type === "RUN_EVENT_TYPE_WORKFLOW_FINISH").map((event) => event.runStatus),
    ["RUN_STATUS_SUSPENDED", "RUN_STATUS_SUCCESS"],
  );
}

test("follow with attemptTimeoutMs reopens each Watch its deadline ends: every event once", { timeout: 30_000 }, async () => {
  let attempts = 0;
  const events = await followAcrossAttempts(
    {
      attemptTimeoutMs: 300,
      callOptions: () => {
        attempts += 1;
        return {};
      },
    },
    () => attempts,
    5, // four attempts ended by their deadline while the run stayed suspended
  );
  assertWholeRun(events);
  assert.ok(attempts >= 5, `${attempts} attempts`);
  await assert.rejects(
    follow(client, "x", { attemptTimeoutMs: 0 }).next(),
    /attemptTimeoutMs must be a positive number of milliseconds/,
  );
  // Shorter than a round trip, attempts would reopen without end and never hear (audit: 935
  // Watch calls in 3 s with 1 ms).
  await assert.rejects(follow(client, "x", { attemptTimeoutMs: 1 }).next(), /at least 100/);
});

test("a deadline of follow's callOptions bounds each attempt; a fixed one that passed is thrown", { timeout: 30_000 }, async () => {
  let attempts = 0;
  const events = await followAcrossAttempts(
    {
      callOptions: () => {
        attempts += 1;
        return deadline(0.3); // made afresh for each attempt: a per-attempt deadline
      },
    },
    () => attempts,
    4,
  );
  assertWholeRun(events);

  // The same Date every time: the caller's own time, up once it passed.
  const { run } = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "approval", inputData: toValue({ count: 1 }), wait: true }, deadline(10), cb),
  );
  const fixed = deadline(0.3);
  let seen = 0;
  const ended = await (async () => {
    for await (const event of follow(client, run!.runId, { callOptions: () => fixed })) seen = Number(event.sequence);
  })().then(
    () => assert.fail("follow with a passed deadline ended without an error"),
    (error: grpc.ServiceError) => error,
  );
  assert.equal(ended.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(seen > 0, "the events before the deadline were delivered");
  await unary((cb) => client.Cancel({ runId: run!.runId }, deadline(10), cb));
});

test("a Start whose reply was lost is retried with the same requestId: one run", async () => {
  // RUNSERVICE_RETRY_PROXY forwards each Start to the server but answers the first with
  // UNAVAILABLE, as when a server drains during a `wait` Start; gRPC retries it (service config).
  const through = createClient(retryProxy());
  const resourceId = `retry-${randomUUID()}`;
  const { run } = await unary<StartResponse__Output>((cb) =>
    through.Start({ workflowId: "echo", resourceId, inputData: toValue({ count: 1 }), wait: true }, deadline(30), cb),
  ).finally(() => through.close());
  assert.equal(run?.status, "RUN_STATUS_SUCCESS");
  assert.equal(run?.runId.charAt(14), "7", "a run id the client chose is time-ordered (UUIDv7)");
  const listed = await unary<ListRunsResponse__Output>((cb) =>
    client.ListRuns({ workflowId: "echo", resourceId }, deadline(10), cb),
  );
  assert.deepEqual(
    listed.runs.map((r) => r.runId),
    [run?.runId],
  );
});

test("a ForkRun without newRunId or requestId makes a time-ordered run; a requestId names it", async () => {
  const { run } = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "echo", inputData: toValue({ count: 1 }), wait: true }, deadline(30), cb),
  );
  assert.equal(run?.status, "RUN_STATUS_SUCCESS");
  const fork = (requestId?: string) =>
    unary<ForkRunResponse__Output>((cb) =>
      client.ForkRun({ runId: run?.runId, step: ["bump"], wait: true, requestId }, deadline(30), cb),
    );
  const unnamed = await fork();
  assert.equal(unnamed.run?.forkedFromRunId, run?.runId);
  assert.equal(unnamed.run?.runId.charAt(14), "7", "the client chose a time-ordered id (UUIDv7)");
  const key = `fork-${randomUUID()}`;
  const [first, again] = [await fork(key), await fork(key)];
  assert.equal(first.run?.runId, again.run?.runId, "the caller's requestId names one fork");
  assert.notEqual(first.run?.runId, unnamed.run?.runId);
});

test("a CreateRun whose reply was lost is retried with the same runId: one run", async () => {
  // The same proxy loses the first CreateRun's reply: without a runId of the client's own,
  // the retry would reserve a second run.
  const through = createClient(retryProxy());
  const resourceId = `reserve-${randomUUID()}`;
  const { run } = await unary<CreateRunResponse__Output>((cb) =>
    through.CreateRun({ workflowId: "echo", resourceId }, deadline(30), cb),
  ).finally(() => through.close());
  assert.equal(run?.status, "RUN_STATUS_PENDING");
  const listed = await unary<ListRunsResponse__Output>((cb) =>
    client.ListRuns({ workflowId: "echo", resourceId }, deadline(10), cb),
  );
  assert.deepEqual(
    listed.runs.map((r) => r.runId),
    [run?.runId],
  );
});

test("a DeleteRun whose reply was lost is retried with the same requestId: it succeeds", async () => {
  // The proxy loses the first DeleteRun's reply after the delete: without a requestId the
  // retry would find the run gone and answer NOT_FOUND.
  const { run } = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "echo", inputData: toValue({ count: 1 }), wait: true }, deadline(20), cb),
  );
  const through = createClient(retryProxy());
  await unary((cb) => through.DeleteRun({ runId: run?.runId }, deadline(30), cb)).finally(() => through.close());
  const gone = await unary((cb) => client.GetRun({ runId: run?.runId }, deadline(10), cb)).then(
    () => assert.fail("the deleted run is still there"),
    (error: grpc.ServiceError) => decodeError(error),
  );
  assert.equal(gone.errorInfo?.reason, "RUN_NOT_FOUND");
});

test("cancels a suspended run", async () => {
  const started = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "approval", inputData: toValue({ count: 5 }), wait: true }, deadline(20), cb),
  );
  const canceled = await unary<CancelResponse__Output>((cb) =>
    client.Cancel({ runId: started.run?.runId, requestId: "node-cancel-1" }, deadline(10), cb),
  );
  assert.equal(canceled.run?.status, "RUN_STATUS_CANCELED");
});

test("decodes an error's status code, ErrorInfo and BadRequest", async () => {
  const missing = await unary((cb) => client.GetWorkflow({ workflowId: "nope" }, deadline(10), cb)).then(
    () => assert.fail("GetWorkflow of an unknown workflow succeeded"),
    (error: grpc.ServiceError) => decodeError(error),
  );
  assert.equal(missing.code, grpc.status.NOT_FOUND);
  assert.equal(missing.status?.code, grpc.status.NOT_FOUND);
  assert.equal(missing.errorInfo?.reason, "WORKFLOW_NOT_FOUND");
  assert.equal(missing.errorInfo?.domain, "runservice.dev");
  assert.deepEqual(missing.errorInfo?.metadata, { workflow_id: "nope" });

  const invalid = await unary((cb) =>
    client.Start({ workflowId: "echo", inputData: toValue({ count: "many" }) }, deadline(10), cb),
  ).then(
    () => assert.fail("a start with invalid input succeeded"),
    (error: grpc.ServiceError) => decodeError(error),
  );
  assert.equal(invalid.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(invalid.errorInfo?.reason, "VALIDATION_FAILED");
  assert.ok(invalid.badRequest?.fieldViolations.some((v) => v.field === "input_data.count"));
});

test("decodes an error whose status carries a detail of a type outside google.rpc", () => {
  // A proxy or mesh may add its own detail; decodeError must keep the rest, not throw.
  const root = new protobuf.Root();
  root.resolvePath = (_origin, file) => join(protoRoot(), file);
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  const errorInfo = root.lookupType("google.rpc.ErrorInfo");
  const statusType = root.lookupType("google.rpc.Status");
  const info = errorInfo.encode(errorInfo.fromObject({ reason: "SERVER_DRAINING", domain: "runservice.dev" })).finish();
  const encoded = statusType
    .encode(
      statusType.fromObject({
        code: grpc.status.UNAVAILABLE,
        message: "draining",
        details: [
          { type_url: "type.googleapis.com/acme.mesh.v1.Hop", value: Buffer.from([8, 1]) },
          { type_url: "type.googleapis.com/google.rpc.ErrorInfo", value: info },
        ],
      }),
    )
    .finish();
  const error = (metadataValue: Buffer): grpc.ServiceError => {
    const metadata = new grpc.Metadata();
    metadata.set("grpc-status-details-bin", metadataValue);
    return Object.assign(new Error("14 UNAVAILABLE: draining"), {
      code: grpc.status.UNAVAILABLE,
      details: "draining",
      metadata,
    });
  };
  const decoded = decodeError(error(Buffer.from(encoded)));
  assert.equal(decoded.errorInfo?.reason, "SERVER_DRAINING");
  assert.deepEqual(
    decoded.status?.details.map((d) => d.type_url),
    ["type.googleapis.com/acme.mesh.v1.Hop", "type.googleapis.com/google.rpc.ErrorInfo"],
  );
  const garbage = decodeError(error(Buffer.from([0xff, 0xff, 0xff])));
  assert.deepEqual([garbage.code, garbage.message, garbage.status], [grpc.status.UNAVAILABLE, "draining", null]);
});

test("toValue and fromValue round-trip JSON and refuse what doubles cannot carry", () => {
  const data = { a: 1, b: [true, null, "x", { c: 2.5 }], d: {} };
  assert.deepEqual(fromValue(toValue(data)), data);
  assert.throws(() => toValue(Number.NaN), RangeError);
  assert.throws(() => toValue(2 ** 60), RangeError);
});

test("toValue refuses what is not JSON, naming its path, and leaves an undefined property out", () => {
  // Typed as Json would not let these through: callers holding `any` (parsed bodies, ORM rows) can.
  const refused = (value: unknown, error: RegExp) =>
    assert.throws(() => toValue(value as Json), (thrown: Error) => thrown instanceof TypeError && error.test(thrown.message));
  refused({ at: { when: new Date(0) } }, /^value\.at\.when is a Date, not JSON data: send its toISOString\(\)/);
  refused({ tags: new Set(["a"]) }, /^value\.tags is an instance of Set/);
  refused(new Map([["a", 1]]), /^value is an instance of Map/);
  refused({ "a b": [1, Buffer.from("x")] }, /^value\["a b"\]\[1\] is an instance of Buffer/);
  refused({ run: new (class Run {})() }, /^value\.run is an instance of Run/);
  refused({ f: () => 1 }, /^value\.f is a function/);
  refused({ s: Symbol("s") }, /^value\.s is a symbol/);
  refused({ big: 2n ** 64n }, /^value\.big is a bigint, not JSON data: send it as a string/);
  refused([1, undefined], /^value\[1\] is undefined, not JSON data: send null/);
  refused(undefined, /^value is undefined/);
  const cycle: Record<string, unknown> = {};
  cycle.self = { again: cycle };
  refused(cycle, /^value\.self\.again is an object it is inside of: JSON cannot carry a cycle/);
  assert.throws(() => toValue({ items: [{ price: Number.NaN }] }), /^RangeError: value\.items\[0\]\.price is NaN/);

  // An undefined property is an absent one (as JSON.stringify and TypeScript's optional fields).
  assert.deepEqual(fromValue(toValue({ city: "Paris", note: undefined } as unknown as Json)), { city: "Paris" });
  const shared = { x: 1 }; // the same object twice is no cycle
  assert.deepEqual(fromValue(toValue([shared, shared])), [{ x: 1 }, { x: 1 }]);
  assert.deepEqual(fromValue(toValue(Object.assign(Object.create(null), { a: 1 }))), { a: 1 });
});
