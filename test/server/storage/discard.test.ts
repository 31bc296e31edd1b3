import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { discardLocalState } from "../../../src/server/storage/discard.js";
import { createTemporaryDirectory, removeTemporaryDirectories } from "./temporary-directories.js";

afterEach(removeTemporaryDirectories);

test("--rejoin moves every entry of the data directory to a timestamped sibling, deleting nothing", async () => {
  const root = await createTemporaryDirectory();
  const dataDirectory = join(root, "n1");
  await mkdir(join(dataDirectory, "log"), { recursive: true });
  await writeFile(join(dataDirectory, "log", "000003.log"), "records");
  await writeFile(join(dataDirectory, "identity.json"), "{}");
  const { movedTo, entries } = await discardLocalState(dataDirectory, new Date("2024-05-01T10:20:30.123Z"));
  expect(movedTo).toBe(join(root, "n1.discarded-2024-05-01T10-20-30.123Z"));
  expect([...entries].sort()).toEqual(["identity.json", "log"]);
  expect(await readdir(dataDirectory)).toEqual([]);
  expect(await readFile(join(movedTo, "log", "000003.log"), "utf8")).toBe("records");
  expect((await readdir(root)).sort()).toEqual(["n1", "n1.discarded-2024-05-01T10-20-30.123Z"]);
});

test("an empty data directory moves nothing and creates no sibling", async () => {
  const root = await createTemporaryDirectory();
  const dataDirectory = join(root, "n1");
  await mkdir(dataDirectory);
  expect((await discardLocalState(dataDirectory, new Date(0))).entries).toEqual([]);
  expect(await readdir(root)).toEqual(["n1"]);
});

test("a second discard at the same moment refuses rather than mixing two discarded states", async () => {
  const root = await createTemporaryDirectory();
  const dataDirectory = join(root, "n1");
  await mkdir(dataDirectory);
  await writeFile(join(dataDirectory, "a"), "first");
  const now = new Date(1000);
  await discardLocalState(dataDirectory, now);
  await writeFile(join(dataDirectory, "a"), "second");
  await expect(discardLocalState(dataDirectory, now)).rejects.toMatchObject({ code: "EEXIST" });
  expect(await readFile(join(dataDirectory, "a"), "utf8")).toBe("second");
});
