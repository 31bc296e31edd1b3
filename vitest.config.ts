import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts", "jepsen-lite/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real processes; two workers match a 2-core machine.
    maxWorkers: 2,
    // Compiles dist once per run, so integration tests never start a stale kv-node.
    globalSetup: ["test/integration/global-setup.ts"],
  },
});
