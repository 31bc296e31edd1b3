/**
 * Set checker, judged by the final read (the last ok read of each key, taken after healing):
 * - lost: an acknowledged add, completed before the final read began, is missing;
 * - phantom: an element read that no add ever attempted;
 * - failed-add-present: an element read that only failed adds (which did not happen) attempted;
 * - recovered (not an anomaly): an `info` add whose element is present after all.
 */
import { KvError } from "../../src/errors.js";
import { completionIndex, operationsByKey, valueKey, type HistoryValue, type Operation } from "../history.js";
import { AnomalyList, type CheckResult } from "./result.js";

export interface SetStats {
  readonly attemptedAdds: number;
  readonly acknowledgedAdds: number;
  readonly finalReadElements: number;
  readonly lost: number;
  readonly phantom: number;
  readonly failedAddPresent: number;
  readonly recovered: number;
  /** Keys with no ok read to judge by. */
  readonly unreadKeys: readonly string[];
}

interface SetTally {
  attemptedAdds: number;
  acknowledgedAdds: number;
  finalReadElements: number;
  lost: number;
  phantom: number;
  failedAddPresent: number;
  recovered: number;
}

function finalRead(operations: readonly Operation[]): Operation | null {
  let last: Operation | null = null;
  for (const operation of operations) {
    if (operation.f !== "read" || operation.type !== "ok") continue;
    if (last === null || completionIndex(operation) > completionIndex(last)) last = operation;
  }
  return last;
}

function readElements(read: Operation): Set<string> {
  if (!Array.isArray(read.value)) throw new KvError("INVALID", `set read at ${read.invoke.index} did not return an array`);
  const elements: readonly HistoryValue[] = read.value;
  return new Set(elements.map((element) => valueKey(element)));
}

/** Adds of one key, grouped by their element's canonical key. */
function addsByElement(operations: readonly Operation[]): Map<string, Operation[]> {
  const adds = new Map<string, Operation[]>();
  for (const operation of operations) {
    if (operation.f !== "add") continue;
    const element = valueKey(operation.invoke.value);
    if (adds.has(element)) adds.get(element)?.push(operation);
    else adds.set(element, [operation]);
  }
  return adds;
}

function checkKey(key: string, operations: readonly Operation[], read: Operation, tally: SetTally, anomalies: AnomalyList): void {
  const present = readElements(read);
  const adds = addsByElement(operations);
  tally.finalReadElements += present.size;
  for (const [element, elementAdds] of adds) {
    tally.attemptedAdds += elementAdds.length;
    const acknowledged = elementAdds.filter((add) => add.type === "ok");
    tally.acknowledgedAdds += acknowledged.length;
    if (present.has(element)) {
      if (acknowledged.length === 0 && elementAdds.some((add) => add.type === "info")) tally.recovered += 1;
      continue;
    }
    const lost = acknowledged.filter((add) => completionIndex(add) < read.invoke.index);
    if (lost.length === 0) continue;
    tally.lost += 1;
    anomalies.add({ kind: "lost-add", key, message: `set ${JSON.stringify(key)}: acknowledged ${element} is missing from the final read`, operations: [...lost, read] });
  }
  for (const element of present) {
    const elementAdds = adds.get(element) ?? [];
    if (elementAdds.some((add) => add.type !== "fail")) continue;
    const kind = elementAdds.length === 0 ? "phantom-element" : "failed-add-present";
    if (kind === "phantom-element") tally.phantom += 1;
    else tally.failedAddPresent += 1;
    anomalies.add({ kind, key, message: `set ${JSON.stringify(key)}: final read holds ${element}, which ${elementAdds.length === 0 ? "no add attempted" : "only failed adds attempted"}`, operations: [...elementAdds, read] });
  }
}

export function checkSet(operations: readonly Operation[]): CheckResult<SetStats> {
  const anomalies = new AnomalyList();
  const tally: SetTally = { attemptedAdds: 0, acknowledgedAdds: 0, finalReadElements: 0, lost: 0, phantom: 0, failedAddPresent: 0, recovered: 0 };
  const unreadKeys: string[] = [];
  for (const [key, keyOperations] of operationsByKey(operations)) {
    const read = finalRead(keyOperations);
    if (read === null) unreadKeys.push(key);
    else checkKey(key, keyOperations, read, tally, anomalies);
  }
  const result = anomalies.result({ ...tally, unreadKeys });
  // A key never read cannot be judged: without a violation elsewhere the verdict is unknown.
  return result.valid === true && unreadKeys.length > 0 ? { ...result, valid: "unknown" } : result;
}
