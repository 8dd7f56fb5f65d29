/**
 * JSON <-> google.protobuf.Value, for the objects @grpc/proto-loader builds and reads.
 *
 * runservice carries every piece of JSON-like data (input_data, resume_data, results, state,
 * event payloads, schemas) as a google.protobuf.Value. proto-loader has no JSON mapping for
 * it, so a request needs `{structValue: {fields: {n: {numberValue: 1}}}}`; these two
 * functions do that conversion both ways:
 *
 *   client.Start({workflowId: "echo", inputData: toValue({count: 1})}, cb)
 *   fromValue(response.run.result)   // {count: 2}
 *
 * Numbers are IEEE-754 doubles on the wire: toValue refuses NaN, Infinity and integers
 * beyond 2^53 (send those as strings), so nothing is silently rounded.
 */
import type { Value, Value__Output } from "../generated/google/protobuf/Value";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `json` as a google.protobuf.Value request object. */
export function toValue(json: Json): Value {
  if (json === null) return { nullValue: "NULL_VALUE" };
  switch (typeof json) {
    case "boolean":
      return { boolValue: json };
    case "string":
      return { stringValue: json };
    case "number":
      if (!Number.isFinite(json)) throw new RangeError(`not a finite number: ${json}`);
      if (Number.isInteger(json) && !Number.isSafeInteger(json)) {
        throw new RangeError(`${json} is beyond 2^53 and would be rounded: send it as a string`);
      }
      return { numberValue: json };
    case "object":
      if (Array.isArray(json)) return { listValue: { values: json.map(toValue) } };
      return {
        structValue: {
          fields: Object.fromEntries(Object.entries(json).map(([key, item]) => [key, toValue(item)])),
        },
      };
    default:
      throw new TypeError(`not JSON data: ${typeof json}`);
  }
}

/**
 * A google.protobuf.Value as JSON: one read by proto-loader (with `oneofs: true`) or built by
 * toValue. An unset Value and null_value are null.
 */
export function fromValue(value: Value__Output | Value | null | undefined): Json {
  if (value == null) return null;
  const kind = value.kind ?? oneofKind(value);
  switch (kind) {
    case "numberValue":
      return Number(value.numberValue ?? 0);
    case "stringValue":
      return value.stringValue ?? "";
    case "boolValue":
      return value.boolValue ?? false;
    case "structValue":
      return Object.fromEntries(
        Object.entries(value.structValue?.fields ?? {}).map(([key, item]) => [key, fromValue(item)]),
      );
    case "listValue":
      return (value.listValue?.values ?? []).map(fromValue);
    default:
      return null; // nullValue, or a Value that was never set
  }
}

const KINDS = ["numberValue", "stringValue", "boolValue", "structValue", "listValue"] as const;

function oneofKind(value: Value): string | undefined {
  return KINDS.find((kind) => value[kind] !== undefined);
}
