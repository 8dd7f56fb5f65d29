/**
 * The Node.js caller against a runservice process of its own (RUNSERVICE_SERVE, from
 * tests/test_node_client.py, serving tests/node_workflows.py), which these tests kill, restart
 * and pause: a server away for longer than gRPC's retries, a server that hangs, and how the
 * server counts a Watch that follow read to its end.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import * as grpc from "@grpc/grpc-js";

import type { ListRunsResponse__Output } from "../generated/runservice/v1/ListRunsResponse";
import type { StartRequest } from "../generated/runservice/v1/StartRequest";
import type { StartResponse__Output } from "../generated/runservice/v1/StartResponse";
import { createClient, deadline, decodeError, requestIdInterceptor, unary } from "../src/client";
import { follow } from "../src/follow";
import { toValue } from "../src/value";

interface ServeCommand {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

const serveJson = process.env.RUNSERVICE_SERVE;
if (!serveJson) throw new Error("set RUNSERVICE_SERVE (tests/test_node_client.py does)");
const serve = JSON.parse(serveJson) as ServeCommand;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A `runservice serve` process, started on `address` (a free port by default). */
class Server {
  private constructor(
    private readonly proc: ChildProcess,
    readonly address: string,
    readonly metricsUrl: string,
    private readonly exited: Promise<void>,
  ) {}

  static start(address = "127.0.0.1:0"): Promise<Server> {
    const proc = spawn(serve.argv[0], [...serve.argv.slice(1), "--address", address], {
      cwd: serve.cwd,
      env: serve.env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    return new Promise((resolve, reject) => {
      let log = "";
      const timer = setTimeout(() => fail("did not listen within 20 s"), 20_000);
      const fail = (why: string) => {
        clearTimeout(timer);
        proc.kill("SIGKILL");
        reject(new Error(`the server ${why}:\n${log}`));
      };
      const early = (code: number | null) => fail(`exited (${code})`);
      proc.once("exit", early);
      proc.stderr!.setEncoding("utf8");
      proc.stderr!.on("data", (chunk: string) => {
        log += chunk;
        const listening = /listening on (\S+)/.exec(log);
        const metrics = /metrics on (\S+)/.exec(log);
        if (listening && metrics) {
          clearTimeout(timer);
          proc.removeListener("exit", early);
          resolve(new Server(proc, listening[1], metrics[1], exited));
        }
      }); // read on after that: a full pipe would block the server's logging
    });
  }

  /** SIGKILL: a crash, or a restart that outlasts gRPC's retries. */
  async kill(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  pause(): void {
    this.proc.kill("SIGSTOP");
  }

  resume(): void {
    this.proc.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    this.resume();
    this.proc.kill("SIGTERM");
    await this.exited;
  }

  /** grpc_server_handled_total of Watch by status code, from the server's metrics. */
  async watchesEnded(): Promise<Record<string, number>> {
    const text = await (await fetch(this.metricsUrl)).text();
    const counts: Record<string, number> = {};
    for (const line of text.split("\n")) {
      if (!line.startsWith("grpc_server_handled_total{") || !line.includes('grpc_method="Watch"')) continue;
      const code = /grpc_code="(\w+)"/.exec(line)![1];
      counts[code] = Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return counts;
  }
}

let server: Server;
before(async () => {
  server = await Server.start();
});
after(() => server?.stop());

/** `call` again while it fails UNAVAILABLE (the server not back yet), for up to `ms`. */
async function whileUnavailable<T>(call: () => Promise<T>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if ((error as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || Date.now() > end) throw error;
      await sleep(200);
    }
  }
}

test("a Start failed after gRPC's retries, retried with its error's ids, gets the same run", { timeout: 60_000 }, async () => {
  const client = createClient(server.address);
  try {
    const resourceId = `restart-${randomUUID()}`;
    let request: StartRequest = { workflowId: "nap", resourceId, inputData: toValue({ seconds: 2 }), wait: true };
    // Its outcome is taken at once: a rejection left unhandled while the server is killed
    // would fail the test run.
    const first = unary<StartResponse__Output>((cb) => client.Start(request, deadline(30), cb)).then(
      () => null,
      (error: grpc.ServiceError) => error,
    );
    const listRuns = () =>
      unary<ListRunsResponse__Output>((cb) => client.ListRuns({ workflowId: "nap", resourceId }, deadline(10), cb));
    while ((await listRuns()).runs.length === 0) await sleep(20); // the run is stored and going
    await server.kill();
    const error = await first;
    server = await Server.start(server.address); // the restart, after gRPC's retries gave up
    assert.ok(error, "the Start succeeded with its server killed");
    assert.equal(error.code, grpc.status.UNAVAILABLE, error.message);

    const { retryWith } = decodeError(error);
    assert.match(retryWith.requestId ?? "", /^[0-9a-f-]{36}$/, "the error carries the requestId the client made");
    assert.equal(retryWith.runId?.charAt(14), "7", "and the time-ordered runId");
    assert.deepEqual(error.metadata.get("request_id"), [retryWith.requestId]);
    assert.deepEqual(error.metadata.get("run_id"), [retryWith.runId]);

    request = { ...request, ...retryWith };
    const { run } = await whileUnavailable(
      () => unary<StartResponse__Output>((cb) => client.Start(request, deadline(30), cb)),
      20_000,
    );
    assert.equal(run?.runId, retryWith.runId);
    assert.equal(run?.status, "RUN_STATUS_SUCCESS");
    assert.deepEqual(
      (await listRuns()).runs.map((r) => r.runId),
      [retryWith.runId],
      "one run: the retry got the first one's",
    );
  } finally {
    client.close();
  }
});

test("follow gives up after giveUpAfterMs of silence while its Watch hangs on a paused server", { timeout: 30_000 }, async () => {
  const client = createClient(server.address);
  const { run } = await unary<StartResponse__Output>((cb) =>
    client.Start({ workflowId: "nap", inputData: toValue({ seconds: 60 }) }, deadline(10), cb),
  );
  const giveUpAfterMs = 2_000;
  let seen = 0;
  let settled = false;
  const following = (async () => {
    for await (const event of follow(client, run!.runId, { giveUpAfterMs })) {
      if (seen === 0) await sleep(1.5 * giveUpAfterMs); // a slow consumer is no silent server
      seen = Number(event.sequence);
    }
  })().finally(() => {
    settled = true;
  });
  try {
    while (seen === 0) await sleep(20);
    await sleep(2 * giveUpAfterMs); // the run naps: only the server's heartbeats (0.2 s) are heard
    assert.ok(!settled, "follow gave up on a server that heartbeats");
    server.pause();
    const paused = Date.now();
    const error = await following.then(
      () => assert.fail("follow ended without an error"),
      (error: Error) => error,
    );
    const waited = Date.now() - paused;
    assert.match(error.message, new RegExp(`no message about run ${run!.runId} for ${giveUpAfterMs} ms`));
    // Before the fix it waited for keepalive to drop the connection: about 40 s.
    assert.ok(waited >= giveUpAfterMs - 500 && waited < giveUpAfterMs + 3_000, `gave up after ${waited} ms`);
  } finally {
    server.resume();
    await following.catch(() => undefined);
    await unary((cb) => client.Cancel({ runId: run!.runId }, deadline(10), cb));
    client.close();
  }
});

test("follow reads a Watch on to its status OK after endOfStream: the server counts no cancel", { timeout: 30_000 }, async () => {
  const client = createClient(server.address);
  try {
    const before = await server.watchesEnded();
    const runs = 3;
    for (let i = 0; i < runs; i++) {
      const { run } = await unary<StartResponse__Output>((cb) =>
        client.Start({ workflowId: "nap", inputData: toValue({ seconds: 0.2 }) }, deadline(10), cb),
      );
      // The status each Watch ended with, as the client saw it. A Watch cancelled after its
      // endOfStream has none yet when follow ends: its CANCELLED comes later, and whether the
      // server counts it so depends on which reaches it first, the cancel or its own OK.
      const statuses: grpc.status[] = [];
      const recordStatus: grpc.Interceptor = (options, nextCall) =>
        new grpc.InterceptingCall(nextCall(options), {
          start: (metadata, _listener, next) =>
            next(metadata, {
              onReceiveStatus: (status, next) => {
                statuses.push(status.code);
                next(status);
              },
            }),
        });
      const types: string[] = [];
      const callOptions = () => ({ interceptors: [requestIdInterceptor, recordStatus] });
      for await (const event of follow(client, run!.runId, { callOptions })) types.push(event.type);
      assert.equal(types.at(-1), "RUN_EVENT_TYPE_WORKFLOW_FINISH");
      assert.deepEqual(statuses, [grpc.status.OK], "follow ended once its Watch ended OK");
    }
    const ended = (counts: Record<string, number>, code: string) => (counts[code] ?? 0) - (before[code] ?? 0);
    let now = await server.watchesEnded();
    for (let tries = 0; ended(now, "OK") + ended(now, "CANCELLED") < runs && tries < 100; tries++) {
      await sleep(50); // the server counts a call once its handler is done
      now = await server.watchesEnded();
    }
    assert.deepEqual([ended(now, "OK"), ended(now, "CANCELLED")], [runs, 0], JSON.stringify(now));
  } finally {
    client.close();
  }
});
