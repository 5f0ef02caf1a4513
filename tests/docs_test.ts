/**
 * The project documents itself: every section anchor of docs/protocol.md a source file or doc cites
 * names a heading of docs/protocol.md, and CHANGELOG.md describes changes, not tracker numbers.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^a-z0-9 -]/g, "").replaceAll(" ", "-");
}

async function* files(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(`${ROOT}${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* files(path);
    else if (/\.(ts|md|proto)$/.test(e.name)) yield path;
  }
}

Deno.test("docs/protocol.md anchors cited anywhere exist", async () => {
  const doc = await Deno.readTextFile(`${ROOT}docs/protocol.md`);
  const anchors = new Set(
    doc.split("\n").filter((l) => /^#{1,6} /.test(l)).map((l) => slug(l.replace(/^#+/, ""))),
  );
  for (const a of ["history", "stream-positions", "session-restore", "differences", "secrets"]) {
    assert.ok(anchors.has(a), `docs/protocol.md lost its #${a} section`);
  }
  const cited: string[] = [];
  for (const dir of ["src", "proto", "demo", "deploy", "docs", "tests", "bench"]) {
    for await (const path of files(dir)) {
      const text = await Deno.readTextFile(`${ROOT}${path}`);
      for (const m of text.matchAll(/protocol\.md#([a-z0-9-]+)/g)) cited.push(`${path}#${m[1]}`);
    }
  }
  const broken = cited.filter((c) => !anchors.has(c.split("#").pop()!));
  assert.deepEqual(broken, [], "citations of missing docs/protocol.md sections");
});

Deno.test("CHANGELOG.md names no tracker issue numbers", async () => {
  const text = await Deno.readTextFile(`${ROOT}CHANGELOG.md`);
  assert.doesNotMatch(text, /\bissues? #?\d+|\(#\d+\)/i);
});
