export {
  checkToken,
  connect,
  createClient,
  deadline,
  decodeError,
  loadContract,
  protoRoot,
  requestIdInterceptor,
  tokenInterceptor,
  unary,
  uuidv7,
  LOAD_OPTIONS,
} from "./client";
export type { ClientOptions, FilledIds, RichError, ServiceConstructor } from "./client";
export { follow, shouldReconnect } from "./follow";
export type { FollowOptions } from "./follow";
export { createScheduleClient } from "./schedules";
export { fromValue, toValue } from "./value";
export type { Json } from "./value";
