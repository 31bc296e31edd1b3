import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ERROR_CODES, KvError } from "../../src/errors.js";
import { encode } from "../../src/engine/codec.js";
import { COMMAND, COMMANDS, commandByCode, isPeerCommand, PEER_COMMAND_BASE } from "../../src/server/protocol/commands.js";
import { PayloadFields } from "../../src/server/protocol/payload.js";
import { decodeErrorPayload, encodeErrorPayload, isStatus, STATUS } from "../../src/server/protocol/status.js";

describe("command table", () => {
  it("keeps the seed's codes", () => {
    const seed = ["get", "set", "delete", "exists", "incr", "decr", "cas", "ping", "info", "setnx", "lock", "unlock", "extend"] as const;
    expect(seed.map((name) => COMMAND[name])).toEqual(seed.map((_, index) => index + 1));
  });

  it("has one code per name and one name per code", () => {
    expect(new Set(COMMANDS.map((command) => command.code)).size).toBe(COMMANDS.length);
    expect(new Set(COMMANDS.map((command) => command.name)).size).toBe(COMMANDS.length);
    for (const command of COMMANDS) expect(commandByCode(command.code)).toBe(command);
  });

  it("covers every operation of the spec and the cluster operations", () => {
    const operations = [
      "getWithMeta", "setMetadata", "getMetadata", "incrFloat", "incrDecimal", "append", "mget", "mset", "mdelete",
      "keys", "scan", "count", "getPattern", "deletePattern", "ttl", "expire", "persist", "storageSize",
      "deleteExpired", "registerSession", "clusterStatus", "memberAdd", "memberRemove", "memberPromote", "transferLeader", "snapshotSave",
    ];
    const names = new Set<string>(COMMANDS.map((command) => command.name));
    expect(operations.filter((operation) => !names.has(operation))).toEqual([]);
  });

  it("marks writes: exactly the commands that change replicated state", () => {
    const reads = ["get", "exists", "ping", "info", "getWithMeta", "getMetadata", "mget", "keys", "scan", "count", "getPattern", "ttl", "storageSize"] as const;
    for (const name of reads) expect(commandByCode(COMMAND[name])?.write).toBe(false);
    const writes = ["set", "delete", "incr", "cas", "setnx", "lock", "unlock", "extend", "mset", "deletePattern", "expire", "registerSession"] as const;
    for (const name of writes) expect(commandByCode(COMMAND[name])?.write).toBe(true);
  });

  it("places peer commands at 0x80 and above, and client commands below", () => {
    expect(COMMAND.handshake).toBe(PEER_COMMAND_BASE);
    for (const command of COMMANDS) {
      expect(isPeerCommand(command.code)).toBe(["handshake", "handshakeProof", "raftMessages"].includes(command.name));
    }
    expect(commandByCode(0x00)).toBeUndefined();
    expect(commandByCode(0xff)).toBeUndefined();
  });
});

describe("status and error payloads", () => {
  it("knows the four statuses of the spec", () => {
    expect(STATUS).toEqual({ OK: 0, NULL: 1, ERROR: 2, INVALID: 3 });
    expect([0, 1, 2, 3, 4].map(isStatus)).toEqual([true, true, true, true, false]);
  });

  it("round-trips every error code with its leader hint and keys", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ERROR_CODES),
        fc.string(),
        fc.option(fc.string(), { nil: undefined }),
        fc.option(fc.array(fc.string(), { maxLength: 5 }), { nil: undefined }),
        (code, message, leader, keys) => {
          const details = { ...(leader === undefined ? {} : { leader }), ...(keys === undefined ? {} : { keys }) };
          const decoded = decodeErrorPayload(encodeErrorPayload(new KvError(code, message, details)));
          expect(decoded).toBeInstanceOf(KvError);
          expect({ code: decoded.code, message: decoded.message, details: decoded.details }).toEqual({ code, message, details });
        },
      ),
      { numRuns: 100 },
    );
  });

  it("turns an unknown code or a malformed payload into INVALID", () => {
    expect(decodeErrorPayload(encode({ code: "NOPE", message: "x" })).code).toBe("INVALID");
    expect(decodeErrorPayload(encode("just a string")).code).toBe("INVALID");
    expect(decodeErrorPayload(Uint8Array.of(0xc1)).code).toBe("INVALID");
    expect(decodeErrorPayload(encode({ code: "BUSY", message: 3, leader: 4, keys: [1] })).details).toEqual({});
  });
});

describe("PayloadFields", () => {
  const fields = PayloadFields.decode(
    encode({ key: "k", ttl: 1.5, count: 10, token: 2n ** 40n, nx: true, raw: new Uint8Array([1]), list: ["a"], value: null, none: null, nested: { a: "b" } }),
  );

  it("reads each field with its type", () => {
    expect(fields.string("key")).toBe("k");
    expect(fields.number("ttl")).toBe(1.5);
    expect(fields.integer("count")).toBe(10);
    expect(fields.bigint("token")).toBe(2n ** 40n);
    expect(fields.bigint("count")).toBe(10n);
    expect(fields.integer("token")).toBe(2 ** 40);
    expect(fields.boolean("nx")).toBe(true);
    expect([...fields.bytes("raw")]).toEqual([1]);
    expect(fields.stringList("list")).toEqual(["a"]);
    expect(fields.fieldsOf("nested").string("a")).toBe("b");
  });

  it("treats a missing or nil structural field as absent, but keeps nil as a value", () => {
    expect(fields.optionalNumber("none")).toBeUndefined();
    expect(fields.optionalString("missing")).toBeUndefined();
    expect(fields.has("none")).toBe(false);
    expect(fields.requiredValue("value")).toBeNull();
    expect(() => fields.requiredValue("missing")).toThrow(KvError);
  });

  it("refuses a missing or mistyped field with INVALID", () => {
    const invalid = (read: () => unknown): string => {
      try {
        read();
      } catch (error) {
        return error instanceof KvError ? error.code : "not a KvError";
      }
      return "no error";
    };
    expect(invalid(() => fields.string("missing"))).toBe("INVALID");
    expect(invalid(() => fields.string("ttl"))).toBe("INVALID");
    expect(invalid(() => fields.integer("ttl"))).toBe("INVALID");
    expect(invalid(() => fields.boolean("key"))).toBe("INVALID");
    expect(invalid(() => fields.bytes("key"))).toBe("INVALID");
    expect(invalid(() => fields.stringList("raw"))).toBe("INVALID");
    expect(invalid(() => fields.fieldsOf("key"))).toBe("INVALID");
    expect(invalid(() => PayloadFields.decode(encode([1, 2])))).toBe("INVALID");
  });
});
