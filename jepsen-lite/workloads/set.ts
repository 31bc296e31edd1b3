/**
 * Set workload: each add writes a unique element as its own key `<set>/<element>`, a read lists
 * the set's keys. A final read of every set after healing shows lost or phantom elements.
 */
import type { SeededRandom } from "../random.js";
import type { PlannedOperation, Workload } from "./workload.js";

export interface SetWorkloadOptions {
  readonly keys: number;
}

export const SET_KEY_PREFIX = "set:";

function read(key: string): PlannedOperation {
  const prefix = `${key}/`;
  return {
    f: "read", key, isRead: true,
    run: async (client) => {
      const members = await client.keys(`${prefix}*`);
      return { type: "ok", value: members.map((member) => Number(member.slice(prefix.length))) };
    },
  };
}

function add(key: string, element: number): PlannedOperation {
  return {
    f: "add", key, value: element, isRead: false,
    run: async (client) => {
      await client.set(`${key}/${element}`, element);
      return { type: "ok" };
    },
  };
}

export function setWorkload(options: SetWorkloadOptions): Workload {
  const keyOf = (index: number): string => `${SET_KEY_PREFIX}${index}`;
  let nextElement = 0;
  return {
    name: "set",
    nextOperation(random: SeededRandom): PlannedOperation {
      const key = keyOf(random.integer(0, options.keys - 1));
      return random.next() < 0.1 ? read(key) : add(key, nextElement++);
    },
    finalOperations: () => Array.from({ length: options.keys }, (_, index) => read(keyOf(index))),
  };
}
