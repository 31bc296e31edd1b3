#!/usr/bin/env node
import { runKv } from "../src/cli/kv-program.js";
import { processIo } from "../src/cli/run.js";

process.exitCode = await runKv(process.argv.slice(2), processIo());
