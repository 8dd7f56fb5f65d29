/**
 * The Node.js caller against a real runservice that requires a bearer token
 * (RUNSERVICE_AUTH_TARGET, started by tests/test_node_client.py with RUNSERVICE_AUTH_TOKEN as its
 * only token and the workflows of tests/workflows.py): ClientOptions.token goes with every call of
 * every client connect builds, unary and streaming, and a token gRPC cannot send is refused at once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import * as grpc from "@grpc/grpc-js";

import type { ListSchedulesResponse__Output } from "../generated/runservice/v1/ListSchedulesResponse";
import type { ListWorkflowsResponse__Output } from "../generated/runservice/v1/ListWorkflowsResponse";
import type { RunEvent__Output } from "../generated/runservice/v1/RunEvent";
import type { StartResponse__Output } from "../generated/runservice/v1/StartResponse";
import type { StreamResponse__Output } from "../generated/runservice/v1/StreamResponse";
import {
  createClient,
  deadline,
  decodeError,
  requestIdInterceptor,
  tokenInterceptor,
  unary,
  type RichError,
} from "../src/client";
import { follow } from "../src/follow";
import { createScheduleClient } from "../src/schedules";
import { toValue } from "../src/value";

const target = process.env.RUNSERVICE_AUTH_TARGET;
const token = process.env.RUNSERVICE_AUTH_TOKEN;
if (!target || !token) {
  throw new Error("set RUNSERVICE_AUTH_TARGET and RUNSERVICE_AUTH_TOKEN (tests/test_node_client.py does)");
}

const TIMEOUT = { timeout: 30_000 };

/** The decoded error of a call that must fail. */
function refused(call: Promise<unknown>): Promise<RichError> {
  return call.then(
    () => assert.fail("the call succeeded"),
    (error: grpc.ServiceError) => decodeError(error),
  );
}

test("a call without the token is UNAUTHENTICATED (TOKEN_MISSING), a wrong one TOKEN_INVALID", TIMEOUT, async () => {
  const anonymous = createClient(target);
  const schedules = createScheduleClient(target);
  const wrong = createClient(target, { token: `${token}X` });
  try {
    const missing = await refused(unary((cb) => anonymous.ListWorkflows({}, deadline(10), cb)));
    assert.equal(missing.code, grpc.status.UNAUTHENTICATED);
    assert.equal(missing.errorInfo?.reason, "TOKEN_MISSING");
    const noSchedules = await refused(unary((cb) => schedules.ListSchedules({}, deadline(10), cb)));
    assert.equal(noSchedules.errorInfo?.reason, "TOKEN_MISSING");
    const invalid = await refused(unary((cb) => wrong.ListWorkflows({}, deadline(10), cb)));
    assert.equal(invalid.code, grpc.status.UNAUTHENTICATED);
    assert.equal(invalid.errorInfo?.reason, "TOKEN_INVALID");
  } finally {
    anonymous.close();
    schedules.close();
    wrong.close();
  }
});

test("the token option goes with every call: unary, Stream, follow's Watch, ScheduleService", TIMEOUT, async () => {
  const client = createClient(target, { token });
  const schedules = createScheduleClient(target, { token });
  try {
    const listed = await unary<ListWorkflowsResponse__Output>((cb) => client.ListWorkflows({}, deadline(10), cb));
    assert.ok(listed.workflows.some((wf) => wf.id === "approval"));
    const none = await unary<ListSchedulesResponse__Output>((cb) => schedules.ListSchedules({}, deadline(10), cb));
    assert.deepEqual(none.schedules, []);

    const streamed: StreamResponse__Output[] = [];
    for await (const message of client.Stream({ start: { workflowId: "echo", inputData: toValue({ count: 1 }) } })) {
      streamed.push(message as StreamResponse__Output);
    }
    assert.equal(streamed.at(-1)?.run?.status, "RUN_STATUS_SUCCESS");

    // Start without a requestId: requestIdInterceptor still fills one beside the token.
    const { run } = await unary<StartResponse__Output>((cb) =>
      client.Start({ workflowId: "approval", inputData: toValue({ count: 1 }), wait: true }, deadline(20), cb),
    );
    assert.equal(run?.status, "RUN_STATUS_SUSPENDED");
    assert.equal(run?.runId.charAt(14), "7", "requestIdInterceptor chose a time-ordered run id");
    const events: RunEvent__Output[] = [];
    const following = (async () => {
      for await (const event of follow(client, run!.runId)) events.push(event);
    })();
    while (events.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await unary((cb) => client.Resume({ runId: run!.runId, resumeData: toValue({ approved: true }) }, deadline(10), cb));
    await following;
    assert.deepEqual(
      events.map((event) => Number(event.sequence)),
      Array.from({ length: events.length }, (_, i) => i + 1),
    );
    assert.equal(events.at(-1)?.runStatus, "RUN_STATUS_SUCCESS");
  } finally {
    client.close();
    schedules.close();
  }
});

test("per-call interceptors replace the client's: include tokenInterceptor in them", TIMEOUT, async () => {
  const client = createClient(target, { token });
  try {
    const without = await refused(
      unary((cb) => client.ListWorkflows({}, { ...deadline(10), interceptors: [requestIdInterceptor] }, cb)),
    );
    assert.equal(without.errorInfo?.reason, "TOKEN_MISSING");
    const interceptors = [requestIdInterceptor, tokenInterceptor(token)];
    const listed = await unary<ListWorkflowsResponse__Output>((cb) =>
      client.ListWorkflows({}, { ...deadline(10), interceptors }, cb),
    );
    assert.ok(listed.workflows.length > 0);
  } finally {
    client.close();
  }
});

test("a token gRPC cannot send throws at construction, with a clear message", TIMEOUT, () => {
  const unsendable = /the token must be non-empty printable ASCII, no spaces \(a trailing newline\?\)/;
  for (const bad of [`${token}\n`, "", "two words", "caf\u00e9", "tab\there"]) {
    assert.throws(() => createClient(target, { token: bad }), unsendable, JSON.stringify(bad));
    assert.throws(() => createScheduleClient(target, { token: bad }), unsendable, JSON.stringify(bad));
    assert.throws(() => tokenInterceptor(bad), unsendable, JSON.stringify(bad));
  }
});
