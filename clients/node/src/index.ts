export { createClient, deadline, decodeError, protoRoot, unary, LOAD_OPTIONS } from "./client";
export type { ClientOptions, RichError } from "./client";
export { fromValue, toValue } from "./value";
export type { Json } from "./value";
