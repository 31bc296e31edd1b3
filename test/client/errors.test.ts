import { describe, expect, test } from "vitest";
import { CLIENT_ERROR_CLASSES, KvTypeError, KvUnavailableError, toClientError } from "../../src/client/errors.js";
import * as root from "../../src/index.js";
import { ERROR_CODES, KvError } from "../../src/errors.js";

describe("error classes", () => {
  test.each(ERROR_CODES)("%s maps to a KvError subclass that keeps the code (NOT_LEADER: UNAVAILABLE)", (code) => {
    const mapped = toClientError(new KvError(code, `a ${code} error`, { keys: ["k"], leader: "h:1" }));
    const ErrorClass = CLIENT_ERROR_CLASSES[code];
    expect(mapped).toBeInstanceOf(ErrorClass);
    expect(mapped).toBeInstanceOf(KvError);
    expect((mapped as KvError).code).toBe(code === "NOT_LEADER" ? "UNAVAILABLE" : code);
    expect((mapped as KvError).message).toBe(`a ${code} error`);
    expect((mapped as KvError).details).toEqual({ keys: ["k"], leader: "h:1" });
  });

  test("every class is exported from the package root under its own name", () => {
    for (const ErrorClass of new Set(Object.values(CLIENT_ERROR_CLASSES))) {
      const instance = new ErrorClass("x");
      expect(instance.name).toBe(ErrorClass.name);
      expect((root as Record<string, unknown>)[ErrorClass.name]).toBe(ErrorClass);
    }
  });

  test("an error already of its class, and anything that is not a KvError, pass unchanged", () => {
    const typed = new KvTypeError("wrong");
    expect(toClientError(typed)).toBe(typed);
    const abort = new DOMException("aborted", "AbortError");
    expect(toClientError(abort)).toBe(abort);
    expect(new KvUnavailableError("u").code).toBe("UNAVAILABLE");
  });
});
