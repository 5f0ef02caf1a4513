import assert from "node:assert/strict";
import { nanoid } from "./nanoid.ts";

Deno.test("nanoid: URL-safe ids of the asked size, no repeats across pool refills", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = nanoid();
    assert.match(id, /^[A-Za-z0-9_-]{21}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 5000);
  assert.equal(nanoid(8).length, 8);
  assert.match(nanoid(5000), /^[A-Za-z0-9_-]{5000}$/);
});
