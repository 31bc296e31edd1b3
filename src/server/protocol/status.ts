import { isErrorCode, KvError, type KvErrorDetails } from "../../errors.js";
import { encode } from "../../engine/codec.js";
import { PayloadFields } from "./payload.js";

/** Response status, the first byte of a response frame (SPEC §6). */
export const STATUS = Object.freeze({
  OK: 0x00,
  NULL: 0x01,
  /** Payload `{ code, message, leader?, keys? }`; the connection stays open. */
  ERROR: 0x02,
  /** Malformed request; same payload as ERROR, and the server closes the connection. */
  INVALID: 0x03,
});

export type Status = (typeof STATUS)[keyof typeof STATUS];

export function isStatus(value: number): value is Status {
  return value >= STATUS.OK && value <= STATUS.INVALID;
}

/** The empty msgpack document (nil), the payload of NULL and of empty OK responses. */
export const EMPTY_PAYLOAD: Uint8Array = encode(null);

export function encodeErrorPayload(error: KvError): Uint8Array {
  const { leader, keys } = error.details;
  return encode({
    code: error.code,
    message: error.message,
    ...(leader === undefined ? {} : { leader }),
    ...(keys === undefined ? {} : { keys: [...keys] }),
  });
}

/**
 * Turns an ERROR/INVALID payload back into the KvError the server raised. A payload that does
 * not carry a known code is itself a protocol violation: INVALID.
 */
export function decodeErrorPayload(payload: Uint8Array): KvError {
  let fields: PayloadFields;
  try {
    fields = PayloadFields.decode(payload);
  } catch {
    return new KvError("INVALID", "malformed error payload");
  }
  const code = fields.value("code");
  const message = fields.value("message");
  const text = typeof message === "string" ? message : "";
  if (!isErrorCode(code)) return new KvError("INVALID", `unknown error code ${String(code)}: ${text}`);
  return new KvError(code, text, readDetails(fields));
}

function readDetails(fields: PayloadFields): KvErrorDetails {
  const leader = fields.value("leader");
  const keys = fields.value("keys");
  const validKeys = Array.isArray(keys) && keys.every((key) => typeof key === "string");
  return {
    ...(typeof leader === "string" ? { leader } : {}),
    ...(validKeys ? { keys: keys as string[] } : {}),
  };
}

