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
 * beyond 2^53 (send those as strings), so nothing is silently rounded. It refuses as well what
 * is not JSON (a Date, Map, Set, Buffer, class instance, function, symbol, bigint, a cycle, an
 * undefined array item) rather than send something else: JSON.stringify would make a Map `{}`
 * and a Date a string. Each error names the path of what it refused (`value.items[3].when`). An
 * object property that is undefined is left out, as JSON.stringify does and as TypeScript's
 * optional properties mean: absent.
 */
import type { Value, Value__Output } from "../generated/google/protobuf/Value";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `json` as a google.protobuf.Value request object; a RangeError for a number a double cannot
 * carry exactly, a TypeError for anything else that is not JSON (see above). */
export function toValue(json: Json): Value {
  return convert(json, "value", new Set());
}

/** `json` (at `path`) as a Value; `within` holds the objects and arrays it is inside of. */
function convert(json: unknown, path: string, within: Set<object>): Value {
  if (json === null) return { nullValue: "NULL_VALUE" };
  switch (typeof json) {
    case "boolean":
      return { boolValue: json };
    case "string":
      return { stringValue: json };
    case "number":
      if (!Number.isFinite(json)) throw new RangeError(`${path} is ${json}: not a finite number, which JSON cannot carry`);
      if (Number.isInteger(json) && !Number.isSafeInteger(json)) {
        throw new RangeError(`${path} is ${json}, beyond 2^53: it would be rounded, send it as a string`);
      }
      return { numberValue: json };
    case "object": {
      const isArray = Array.isArray(json);
      if (!isArray && !isPlainObject(json)) throw notJson(json, path);
      if (within.has(json)) throw new TypeError(`${path} is an object it is inside of: JSON cannot carry a cycle`);
      within.add(json);
      try {
        if (isArray) {
          // Array.from visits the holes of a sparse array too: each is refused as undefined.
          return { listValue: { values: Array.from(json, (item, i) => convert(item, `${path}[${i}]`, within)) } };
        }
        const fields: Record<string, Value> = {};
        for (const [key, item] of Object.entries(json)) {
          if (item !== undefined) fields[key] = convert(item, member(path, key), within);
        }
        return { structValue: { fields } };
      } finally {
        within.delete(json);
      }
    }
    default:
      throw notJson(json, path);
  }
}

/** True for `{...}` and Object.create(null): what JSON.parse makes, not a class's instance. */
function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function notJson(value: unknown, path: string): TypeError {
  let what: string;
  let instead = "convert it to objects, arrays, strings, numbers, booleans and null";
  if (value instanceof Date) {
    what = "a Date";
    instead = "send its toISOString(), or its epoch milliseconds";
  } else if (typeof value === "bigint") {
    what = "a bigint";
    instead = "send it as a string (or a number, when within 2^53)";
  } else if (typeof value === "object") {
    const name = (value as object).constructor?.name;
    what = name ? `an instance of ${name}` : "an object that is not plain";
  } else if (value === undefined) {
    what = "undefined";
    instead = "send null (an object's undefined property is left out)";
  } else {
    what = `a ${typeof value}`;
  }
  return new TypeError(`${path} is ${what}, not JSON data: ${instead}`);
}

/** `path.key`, or `path["key"]` for a key that is not an identifier. */
function member(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
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
