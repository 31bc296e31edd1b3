import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real processes; two workers match a 2-core machine.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts", "src/**/*.test.ts", "jepsen-lite/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/integration/**", "test/jepsen/smoke.test.ts"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/jepsen/smoke.test.ts"],
          // Real kv-node processes on a freshly compiled dist, one file at a time and after the
          // unit tests, so election and failover times are not measured against a busy CPU.
          globalSetup: ["test/integration/global-setup.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
