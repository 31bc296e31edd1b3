/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of LevelDB's log
 * records. node:zlib only has the IEEE CRC-32, and a table-driven CRC is a few lines: a
 * dependency would buy nothing but another native build.
 */

const CASTAGNOLI_REFLECTED = 0x82f63b78;

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ CASTAGNOLI_REFLECTED : crc >>> 1;
    table[byte] = crc >>> 0;
  }
  return table;
})();

/** CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it). */
export function crc32c(data: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (let offset = 0; offset < data.length; offset++) {
    crc = (TABLE[(crc ^ (data[offset] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return ~crc >>> 0;
}

/** LevelDB stores masked CRCs, so that a CRC computed over data holding CRCs stays strong. */
const MASK_DELTA = 0xa282ead8;

export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}
