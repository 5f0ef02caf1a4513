import assert from "node:assert/strict";
import { utf8Length } from "./utf8_length.ts";

Deno.test("utf8Length counts bytes as WebSocket.send encodes them", () => {
  const samples = [
    "",
    "plain ascii",
    "é and ü",
    "€ 中文",
    "emoji 😀 pair",
    "lone high \ud83d end",
    "lone low \ude00 mid",
    "\ud83d",
    JSON.stringify({ message: "x".repeat(1000) + "😀" }),
  ];
  for (const s of samples) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, JSON.stringify(s));
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, "again (cached)");
  }
});
