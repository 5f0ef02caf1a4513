import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { signStream, verifyStream } from "./signed_stream.ts";
import { EmptySecretError } from "../util/secrets.ts";

const KEY = "s3Krit";
const VECTOR = "ImNoYXQvMjAyMyI=--2b2e054b6413bf3bc7e8bbad2f68962aa2ba19821800ccbd8de6fd7314e8320c";

/** Signs arbitrary base64 text with node:crypto, independently of the module under test. */
function signRaw(data: string, key = KEY): string {
  return `${data}--${createHmac("sha256", key).update(data).digest("hex")}`;
}

function signBytes(bytes: Uint8Array, key = KEY): string {
  return signRaw(Buffer.from(bytes).toString("base64"), key);
}

function signJsonText(json: string, key = KEY): string {
  return signRaw(Buffer.from(json, "utf8").toString("base64"), key);
}

Deno.test("signStream matches the protocol test vector", async () => {
  assert.equal(await signStream("chat/2023", KEY), VECTOR);
});

Deno.test("verifyStream accepts the protocol test vector", async () => {
  assert.equal(await verifyStream(VECTOR, KEY), "chat/2023");
});

Deno.test("unicode names use UTF-8 inside base64 and round-trip", async () => {
  for (const name of ["чат/2023", "🚡 cableway", "Zoë", "line\u2028sep", "日本語"]) {
    const signed = await signStream(name, KEY);
    assert.equal(signed, signJsonText(JSON.stringify(name)), name);
    assert.equal(await verifyStream(signed, KEY), name);
  }
});

Deno.test("edge-case names round-trip", async () => {
  for (
    const name of ["", "a--b", "--", 'quote"and\\slash', "tab\tnew\nline", " ", "x".repeat(5000)]
  ) {
    assert.equal(await verifyStream(await signStream(name, KEY), KEY), name);
  }
});

Deno.test("JSON escapes produced by other serializers are decoded", async () => {
  // Rails/Go escape HTML-sensitive characters; the name is what JSON.parse yields.
  assert.equal(await verifyStream(signJsonText('"\\u003cb\\u003e \\u0026"'), KEY), "<b> &");
  assert.equal(await verifyStream(signJsonText('"\\ud83d\\udea1"'), KEY), "🚡");
});

Deno.test("a signature made with another key is rejected", async () => {
  assert.equal(await verifyStream(VECTOR, "other"), null);
  assert.equal(await verifyStream(await signStream("chat/2023", "other"), KEY), null);
});

Deno.test("tampered digests are rejected", async () => {
  const [data, digest] = VECTOR.split("--");
  const flipped = (digest[0] === "0" ? "1" : "0") + digest.slice(1);
  for (
    const bad of [
      flipped,
      digest.toUpperCase(),
      digest.slice(0, -1),
      `${digest}0`,
      "",
      digest.slice(0, 32),
      ` ${digest}`,
    ]
  ) {
    assert.equal(await verifyStream(`${data}--${bad}`, KEY), null, bad);
  }
});

Deno.test("tampered data is rejected", async () => {
  const [, digest] = VECTOR.split("--");
  const otherData = Buffer.from(JSON.stringify("chat/2024")).toString("base64");
  for (const data of [otherData, "ImNoYXQvMjAyMyI", "ImNoYXQvMjAyMyI=\n", ""]) {
    assert.equal(await verifyStream(`${data}--${digest}`, KEY), null, data);
  }
});

Deno.test("anything but exactly two parts is rejected", async () => {
  const [data, digest] = VECTOR.split("--");
  for (
    const bad of [
      "",
      "--",
      data,
      digest,
      `${data}${digest}`,
      `${data}--${digest}--`,
      `--${data}--${digest}`,
      `${data}--${digest}--${digest}`,
      `${data}-${digest}`,
      `${data}---${digest}`,
    ]
  ) {
    assert.equal(await verifyStream(bad, KEY), null, bad);
  }
});

Deno.test("validly signed data that is not strict padded base64 is rejected", async () => {
  for (
    const data of [
      "not base64!",
      "ImNoYXQvMjAyMyI", // missing padding
      "ImNoYXQvMjAyMyI==", // too much padding
      "ImNo YXQvMjAyMyI=", // whitespace
      "ImNoYXQvMjAyMyI=\n",
      "ImNoYXQvMjAyMyJ=", // non-zero trailing bits
      "ImNoYXQ_MjAyMyI=", // base64url alphabet
      "ImNoYXQ-MjAyMyI=",
      "=ImNoYXQvMjAyMyI",
    ]
  ) {
    assert.equal(await verifyStream(signRaw(data), KEY), null, data);
  }
});

Deno.test("validly signed payloads that are not JSON strings are rejected", async () => {
  for (const json of ["42", "null", "true", '{"stream":"chat"}', '["chat"]', "chat", '"open', ""]) {
    assert.equal(await verifyStream(signJsonText(json), KEY), null, json);
  }
});

Deno.test("validly signed bytes that are not UTF-8 are rejected", async () => {
  assert.equal(await verifyStream(signBytes(new Uint8Array([0x22, 0xff, 0xfe, 0x22])), KEY), null);
});

Deno.test("an empty secret never verifies and never signs", async () => {
  // What the reference would accept with no secret configured: HMAC with an empty key.
  const forged = signJsonText('"chat/2023"', "");
  assert.equal(await verifyStream(forged, ""), null);
  assert.equal(await verifyStream(VECTOR, ""), null);
  await assert.rejects(signStream("chat/2023", ""), EmptySecretError);
});

Deno.test("concurrent verifications with the same key agree", async () => {
  const names = Array.from({ length: 50 }, (_, i) => `room/${i}`);
  const signed = await Promise.all(names.map((n) => signStream(n, KEY)));
  assert.deepEqual(await Promise.all(signed.map((s) => verifyStream(s, KEY))), names);
});
