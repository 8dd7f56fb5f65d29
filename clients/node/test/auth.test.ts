/**
 * The Node.js caller against a real runservice that requires a bearer token
 * (RUNSERVICE_AUTH_TARGET, started by tests/test_node_client.py with RUNSERVICE_AUTH_TOKEN as its
 * token, RUNSERVICE_AUTH_TOKENS_FILE as its tokens file, and the workflows of tests/workflows.py): ClientOptions.token goes with every call of
 * every client connect builds, unary and streaming, and a token gRPC cannot send is refused at once.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
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
/** The server's tokens file (besides `token`), looked at every 50 ms: this test rewrites it. */
const tokensFile = process.env.RUNSERVICE_AUTH_TOKENS_FILE;
if (!target || !token || !tokensFile) {
  throw new Error(
    "set RUNSERVICE_AUTH_TARGET, RUNSERVICE_AUTH_TOKEN and RUNSERVICE_AUTH_TOKENS_FILE (tests/test_node_client.py does)",
  );
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

/** A tokens file granting `scopedToken` the runs of `resources` (none: the token is gone). */
function grant(resources: string[] | null): void {
  const entry = `[[tokens]]\nname = "node-scoped"\ntoken = "${scopedToken}"\nresources = ${JSON.stringify(resources)}\n`;
  writeFileSync(tokensFile!, resources === null ? "tokens = []\n" : entry);
}

const scopedToken = "node-scoped-secret";

test("follow reopens a Watch a tokens reload ended (TOKEN_REVOKED): on while the token still grants the run, TOKEN_INVALID once it is gone", TIMEOUT, async () => {
  const admin = createClient(target, { token });
  const scoped = createClient(target, { token: scopedToken });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    grant(["a"]);
    const suspended = async (): Promise<string> => {
      const { run } = await unary<StartResponse__Output>((cb) =>
        admin.Start({ workflowId: "approval", resourceId: "a", inputData: toValue({ count: 1 }), wait: true }, deadline(20), cb),
      );
      assert.equal(run?.status, "RUN_STATUS_SUSPENDED");
      return run!.runId;
    };
    // Until the server took the file: the scoped token answers.
    for (let tries = 0; ; tries++) {
      try {
        await unary((cb) => scoped.ListWorkflows({}, deadline(10), cb));
        break;
      } catch (error) {
        if (tries > 200) throw error;
        await sleep(20);
      }
    }
    const runId = await suspended();
    let attempts = 0;
    const events: RunEvent__Output[] = [];
    const following = (async () => {
      const options = { callOptions: () => ((attempts += 1), {}) };
      for await (const event of follow(scoped, runId, options)) events.push(event);
    })();
    while (events.length === 0) await sleep(20);
    grant(["a", "b"]); // its scope changed: the server ends its streams, follow reopens them
    for (let tries = 0; attempts < 2; tries++) {
      assert.ok(tries < 250, "the Watch was never reopened");
      await sleep(20);
    }
    await unary((cb) => admin.Resume({ runId, resumeData: toValue({ approved: true }) }, deadline(10), cb));
    await following;
    assert.deepEqual(
      events.map((event) => Number(event.sequence)),
      Array.from({ length: events.length }, (_, i) => i + 1),
      "every event once, across the reopened Watch",
    );
    assert.equal(events.at(-1)?.runStatus, "RUN_STATUS_SUCCESS");

    const second = await suspended();
    const seen: RunEvent__Output[] = [];
    const ended = (async () => {
      for await (const event of follow(scoped, second)) seen.push(event);
    })();
    while (seen.length === 0) await sleep(20);
    grant(null); // the token is gone: the reopened Watch is refused, and follow throws that
    const gone = await ended.then(
      () => assert.fail("follow ended without an error"),
      (error: grpc.ServiceError) => decodeError(error),
    );
    assert.equal(gone.code, grpc.status.UNAUTHENTICATED);
    assert.equal(gone.errorInfo?.reason, "TOKEN_INVALID");
  } finally {
    admin.close();
    scoped.close();
  }
});
