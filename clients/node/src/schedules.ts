/**
 * A typed @grpc/grpc-js client of runservice.v1.ScheduleService (list, get, pause, resume and
 * trigger the server's cron schedules), on the same channel setup as createClient.
 *
 *   const schedules = createScheduleClient("127.0.0.1:50051");
 *   const fired = await unary<TriggerScheduleResponse__Output>((cb) =>
 *     schedules.TriggerSchedule({ scheduleId: "nightly-report", requestId: "ops-42" }, deadline(10), cb));
 *
 * Errors carry the same details as RunService's (decodeError): an unknown schedule is NOT_FOUND
 * with ErrorInfo reason SCHEDULE_NOT_FOUND.
 */
import type { ProtoGrpcType } from "../generated/schedule_service";
import type { ScheduleServiceClient } from "../generated/runservice/v1/ScheduleService";
import { connect, loadContract } from "./client";
import type { ClientOptions } from "./client";

/** A ScheduleService client (service config, retries, keepalive, message size and TLS as createClient). */
export function createScheduleClient(target: string, options: ClientOptions = {}): ScheduleServiceClient {
  const loaded = loadContract<ProtoGrpcType>("runservice/v1/schedule_service.proto");
  return connect(loaded.runservice.v1.ScheduleService, target, options);
}
