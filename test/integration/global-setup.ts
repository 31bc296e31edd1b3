import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** Where the integration tests find the compiled node. */
const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NODE_ENTRY = "dist/bin/kv-node.js";
const BUILD_TIMEOUT_MS = 240_000;

/**
 * Integration tests start real `node dist/bin/kv-node.js` processes, so dist must match the
 * sources of this very run: compile once before any integration test file starts.
 *
 * tsc emits even when it reports type errors (noEmitOnError is off), so the output is never
 * stale; type errors are printed here and left to the type-check step of CI to fail on.
 */
export default async function setup(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const started = Date.now();
  const result = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: PROJECT_ROOT, timeout: BUILD_TIMEOUT_MS }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: `${stdout}${stderr}` });
    });
  });
  if (result.code !== 0) process.stderr.write(`integration build: tsc reported errors (exit ${result.code}):\n${result.output}\n`);
  if (!existsSync(`${PROJECT_ROOT}${NODE_ENTRY}`)) throw new Error(`integration build produced no ${NODE_ENTRY}:\n${result.output}`);
  process.stderr.write(`integration build: tsc -p tsconfig.build.json took ${Date.now() - started} ms\n`);
}
