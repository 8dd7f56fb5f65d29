/**
 * The ScheduleService from Node, against a real runservice (RUNSERVICE_TARGET, started by
 * tests/test_node_client.py with the workflows of tests/workflows.py plus "nightly", whose
 * schedule "nightly-echo" ticks once a year so that only the test's triggers start runs).
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";

import * as grpc from "@grpc/grpc-js";

import type { Timestamp__Output } from "../generated/google/protobuf/Timestamp";
import type { GetRunResponse__Output } from "../generated/runservice/v1/GetRunResponse";
import type { GetScheduleResponse__Output } from "../generated/runservice/v1/GetScheduleResponse";
import type { ListRunsResponse__Output } from "../generated/runservice/v1/ListRunsResponse";
import type { ListSchedulesResponse__Output } from "../generated/runservice/v1/ListSchedulesResponse";
import type { PauseScheduleResponse__Output } from "../generated/runservice/v1/PauseScheduleResponse";
import type { ResumeScheduleResponse__Output } from "../generated/runservice/v1/ResumeScheduleResponse";
import type { Schedule__Output } from "../generated/runservice/v1/Schedule";
import type { TriggerScheduleResponse__Output } from "../generated/runservice/v1/TriggerScheduleResponse";
import type { WatchResponse__Output } from "../generated/runservice/v1/WatchResponse";
import { createClient, createScheduleClient, deadline, decodeError, fromValue, unary } from "../src";

const target = process.env.RUNSERVICE_TARGET;
if (!target) throw new Error("set RUNSERVICE_TARGET to a running runservice (host:port)");
const schedules = createScheduleClient(target);
const runs = createClient(target);
after(() => {
  schedules.close();
  runs.close();
});

const ID = "nightly-echo";

async function getSchedule(scheduleId: string): Promise<Schedule__Output> {
  const { schedule } = await unary<GetScheduleResponse__Output>((cb) =>
    schedules.GetSchedule({ scheduleId }, deadline(10), cb),
  );
  assert.ok(schedule);
  return schedule;
}

/** Seconds since the epoch of a Timestamp (int64 seconds arrive as a string), null when unset. */
function seconds(time: Timestamp__Output | null): number | null {
  return time === null ? null : Number(time.seconds) + time.nanos / 1e9;
}

test("lists the schedules and gets one", async () => {
  const all = await unary<ListSchedulesResponse__Output>((cb) => schedules.ListSchedules({}, deadline(10), cb));
  assert.deepEqual(
    all.schedules.map((s) => [s.scheduleId, s.workflowId]),
    [[ID, "nightly"]],
  );
  const ofEcho = await unary<ListSchedulesResponse__Output>((cb) =>
    schedules.ListSchedules({ workflowId: "echo" }, deadline(10), cb),
  );
  assert.deepEqual(ofEcho.schedules, [], "the workflow filter applies");

  const schedule = await getSchedule(ID);
  assert.equal(schedule.cron, "0 0 1 1 *");
  assert.equal(schedule.timezone, "UTC");
  assert.deepEqual(fromValue(schedule.input), { count: 1 });
  assert.equal(schedule.overlapPolicy, "SCHEDULE_OVERLAP_POLICY_SKIP");
  assert.equal(schedule.missedPolicy, "SCHEDULE_MISSED_POLICY_SKIP");
  assert.equal(schedule.description, "Once a year");
  assert.equal(schedule.paused, false);
  const next = seconds(schedule.nextTickTime);
  assert.ok(next !== null && next > Date.now() / 1000, "the next tick is in the future");
  assert.equal(new Date(next * 1000).toISOString().slice(5), "01-01T00:00:00.000Z");
});

test("pauses and resumes a schedule, as Get shows", async () => {
  const paused = await unary<PauseScheduleResponse__Output>((cb) =>
    schedules.PauseSchedule({ scheduleId: ID }, deadline(10), cb),
  );
  assert.equal(paused.schedule?.paused, true);
  assert.equal(paused.schedule?.nextTickTime, null, "a paused schedule has no next tick");
  const whilePaused = await getSchedule(ID);
  assert.equal(whilePaused.paused, true);
  assert.equal(whilePaused.nextTickTime, null);

  const resumed = await unary<ResumeScheduleResponse__Output>((cb) =>
    schedules.ResumeSchedule({ scheduleId: ID }, deadline(10), cb),
  );
  assert.equal(resumed.schedule?.paused, false);
  const afterResume = await getSchedule(ID);
  assert.equal(afterResume.paused, false);
  const next = seconds(afterResume.nextTickTime);
  assert.ok(next !== null && next > Date.now() / 1000, "resumed from its next tick after now");
  assert.equal(next, seconds(resumed.schedule?.nextTickTime ?? null));
});

test("triggers once per request_id: a retry returns the first outcome", async () => {
  const first = await unary<TriggerScheduleResponse__Output>((cb) =>
    schedules.TriggerSchedule({ scheduleId: ID, requestId: "node-trigger-1" }, deadline(10), cb),
  );
  assert.equal(first.outcome, "TRIGGER_OUTCOME_STARTED");
  const runId = first.run?.runId;
  assert.ok(runId);
  assert.equal(first.run?.workflowId, "nightly");
  assert.equal(first.run?.scheduleId, ID);
  assert.equal(first.activeRunId, "");
  assert.ok(seconds(first.tickTime) !== null);

  const again = await unary<TriggerScheduleResponse__Output>((cb) =>
    schedules.TriggerSchedule({ scheduleId: ID, requestId: "node-trigger-1" }, deadline(10), cb),
  );
  assert.equal(again.outcome, first.outcome);
  assert.equal(again.run?.runId, runId, "the same run, not a new one");
  assert.deepEqual(again.tickTime, first.tickTime, "the same tick");

  // The run is a real one, with the schedule's input, and the only run the schedule started.
  await new Promise<void>((resolve, reject) => {
    const watch = runs.Watch({ runId, afterSequence: "0" });
    watch.on("data", (_: WatchResponse__Output) => undefined);
    watch.on("error", reject);
    watch.on("end", resolve);
  });
  const { run } = await unary<GetRunResponse__Output>((cb) => runs.GetRun({ runId }, deadline(10), cb));
  assert.equal(run?.status, "RUN_STATUS_SUCCESS");
  assert.deepEqual(fromValue(run?.result), { count: 2 });
  const listed = await unary<ListRunsResponse__Output>((cb) =>
    runs.ListRuns({ workflowId: "nightly" }, deadline(10), cb),
  );
  assert.deepEqual(
    listed.runs.map((r) => r.runId),
    [runId],
  );
  assert.equal((await getSchedule(ID)).lastRunId, runId);
});

test("decodes a ScheduleService error: an unknown schedule", async () => {
  const missing = await unary((cb) => schedules.GetSchedule({ scheduleId: "nope" }, deadline(10), cb)).then(
    () => assert.fail("GetSchedule of an unknown schedule succeeded"),
    (error: grpc.ServiceError) => decodeError(error),
  );
  assert.equal(missing.code, grpc.status.NOT_FOUND);
  assert.equal(missing.errorInfo?.reason, "SCHEDULE_NOT_FOUND");
  assert.equal(missing.errorInfo?.domain, "runservice.dev");
  assert.deepEqual(missing.errorInfo?.metadata, { schedule_id: "nope" });
});
