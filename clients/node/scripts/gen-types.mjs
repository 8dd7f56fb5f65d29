#!/usr/bin/env node
// Regenerates generated/ (TypeScript types of runservice.v1 and google.rpc) from ../../protos
// with @grpc/proto-loader's proto-loader-gen-types. `node scripts/gen-types.mjs [OUT_DIR]`;
// scripts/node_client.py runs it into a temporary folder to check generated/ is fresh.
// The options must match LOAD_OPTIONS in src/client.ts: the types describe what the loader gives.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, "..");
const protos = resolve(pkg, "..", "..", "protos");
const out = resolve(process.argv[2] ?? join(pkg, "generated"));

rmSync(out, { recursive: true, force: true });
const result = spawnSync(
  process.execPath,
  [
    join(pkg, "node_modules", "@grpc", "proto-loader", "build", "bin", "proto-loader-gen-types.js"),
    "--grpcLib=@grpc/grpc-js",
    "--longs=String",
    "--enums=String",
    "--defaults",
    "--oneofs",
    "--includeComments",
    "--includeDirs=.", // relative: the generated "Original file" comments must not name this machine's paths
    `--outDir=${out}`,
    "runservice/v1/run_service.proto",
    "runservice/v1/schedule_service.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
  ],
  { stdio: "inherit", cwd: protos },
);
process.exit(result.status ?? 1);
