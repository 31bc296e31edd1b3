import { describe, expect, test } from "vitest";
import { crc32c, maskCrc } from "../../../src/server/storage/crc32c.js";

describe("crc32c", () => {
  // Vectors of RFC 3720 (iSCSI) appendix B.4, also LevelDB's util/crc32c_test.cc, and the
  // customary check value of "123456789".
  test.each([
    ["32 zero bytes", new Uint8Array(32), 0x8a9136aa],
    ["32 bytes of 0xff", new Uint8Array(32).fill(0xff), 0x62a8ab43],
    ["bytes 0..31 ascending", Uint8Array.from({ length: 32 }, (_, index) => index), 0x46dd794e],
    ["bytes 31..0 descending", Uint8Array.from({ length: 32 }, (_, index) => 31 - index), 0x113fdb5c],
    ["123456789", new TextEncoder().encode("123456789"), 0xe3069283],
    ["nothing", new Uint8Array(0), 0],
  ])("%s", (_, data, expected) => {
    expect(crc32c(data)).toBe(expected);
  });

  test("continuing from a previous CRC equals the CRC of the concatenation", () => {
    const hello = new TextEncoder().encode("hello ");
    const world = new TextEncoder().encode("world");
    expect(crc32c(world, crc32c(hello))).toBe(crc32c(new TextEncoder().encode("hello world")));
  });

  test("masking changes the CRC and matches LevelDB's rotate-and-add", () => {
    const crc = crc32c(new TextEncoder().encode("foo"));
    expect(maskCrc(crc)).not.toBe(crc);
    expect(maskCrc(0)).toBe(0xa282ead8);
    // ((1 >>> 15) | (1 << 17)) + 0xa282ead8 = 0x20000 + 0xa282ead8
    expect(maskCrc(1)).toBe(0xa284ead8);
  });
});
