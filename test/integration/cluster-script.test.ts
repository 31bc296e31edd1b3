import { expect, test } from "vitest";
import { formatLogLine } from "../../scripts/cluster.js";

function localClock(epochMs: number): string {
  const date = new Date(epochMs);
  const two = (value: number): string => String(value).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

test("npm run cluster turns a pino JSON line into a short readable one", () => {
  const time = Date.UTC(2026, 0, 2, 3, 4, 5, 67);
  const line = JSON.stringify({ level: 30, time, node: "n1", role: "leader", term: 2, leader: "n1", msg: "raft role" });
  expect(formatLogLine(line)).toBe(`${localClock(time)} INFO  raft role role=leader term=2 leader=n1`);
});

test("fields with spaces, nulls and lists stay unambiguous; levels are named", () => {
  const line = JSON.stringify({ level: 40, time: 0, msg: "peer link down", reason: "connect ECONNREFUSED 127.0.0.1:7003", leader: null, members: ["n1", "n2"] });
  expect(formatLogLine(line)).toBe(`${localClock(0)} WARN  peer link down reason="connect ECONNREFUSED 127.0.0.1:7003" leader=null members=["n1","n2"]`);
  expect(formatLogLine(JSON.stringify({ level: 60, time: 0, msg: "stop" }))).toBe(`${localClock(0)} FATAL stop`);
});

test("lines that are not pino JSON pass through unchanged", () => {
  for (const line of ["TypeError: boom", "    at f (file.js:1:2)", "", "[1,2]", "42", "null"]) expect(formatLogLine(line)).toBe(line);
});
