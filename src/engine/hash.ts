/**
 * Placement of keys. A key's bucket is a stable hash of its stored (namespaced) key modulo a
 * fixed number of buckets; its shard is the bucket modulo the shard count. Because the bucket
 * count does not depend on the shard count, snapshots can walk buckets in a fixed order and be
 * byte-identical whatever the shard count of the node that wrote them.
 */
export const BUCKET_COUNT = 4096;

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * 32-bit FNV-1a over the UTF-8 bytes of `text`, encoded on the fly so hashing a key allocates
 * nothing (this runs on every read and write).
 */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  const step = (byte: number): void => {
    hash = Math.imul(hash ^ byte, FNV_PRIME);
  };
  for (let index = 0; index < text.length; index++) {
    let codePoint = text.charCodeAt(index);
    if (codePoint >= 0xd800 && codePoint <= 0xdbff && index + 1 < text.length) {
      const low = text.charCodeAt(index + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        codePoint = 0x10000 + ((codePoint - 0xd800) << 10) + (low - 0xdc00);
        index++;
      }
    }
    if (codePoint < 0x80) {
      step(codePoint);
    } else if (codePoint < 0x800) {
      step(0xc0 | (codePoint >> 6));
      step(0x80 | (codePoint & 0x3f));
    } else if (codePoint < 0x10000) {
      step(0xe0 | (codePoint >> 12));
      step(0x80 | ((codePoint >> 6) & 0x3f));
      step(0x80 | (codePoint & 0x3f));
    } else {
      step(0xf0 | (codePoint >> 18));
      step(0x80 | ((codePoint >> 12) & 0x3f));
      step(0x80 | ((codePoint >> 6) & 0x3f));
      step(0x80 | (codePoint & 0x3f));
    }
  }
  return hash >>> 0;
}

export function bucketOf(storedKey: string): number {
  return fnv1a32(storedKey) & (BUCKET_COUNT - 1);
}

/**
 * Namespace and key joined by a control character. Namespaces and keys are validated to be
 * printable, so the separator can never occur inside either and two (namespace, key) pairs can
 * never produce the same stored key.
 */
const NAMESPACE_SEPARATOR = "\u0000";

export function storedKeyOf(namespace: string, key: string): string {
  return namespace + NAMESPACE_SEPARATOR + key;
}

export function namespacePrefix(namespace: string): string {
  return namespace + NAMESPACE_SEPARATOR;
}

export function splitStoredKey(storedKey: string): { readonly namespace: string; readonly key: string } {
  const at = storedKey.indexOf(NAMESPACE_SEPARATOR);
  return { namespace: storedKey.slice(0, at), key: storedKey.slice(at + 1) };
}
