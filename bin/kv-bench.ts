#!/usr/bin/env node
import { runBench } from "../src/cli/bench/bench-program.js";
import { processIo } from "../src/cli/run.js";

process.exitCode = await runBench(process.argv.slice(2), processIo());
