import assert from "node:assert/strict";
import {
  deriveKey,
  EmptySecretError,
  hmacBytes,
  hmacSha256Hex,
  timingSafeEqual,
  timingSafeEqualBytes,
  toHex,
} from "./secrets.ts";

Deno.test("deriveKey matches the reference test vector (qwerty + api-cable)", async () => {
  assert.equal(
    await deriveKey("qwerty", "api-cable"),
    "bdd0244b3664404d03b7d0c2f1b946dc4fc6c13fdcbfa2be62a4a28deb04d096",
  );
});

Deno.test("deriveKey differs per purpose and is stable across calls (cached key)", async () => {
  const rpc = await deriveKey("qwerty", "rpc-cable");
  const broadcast = await deriveKey("qwerty", "broadcast-cable");
  assert.notEqual(rpc, broadcast);
  assert.equal(await deriveKey("qwerty", "rpc-cable"), rpc);
  assert.match(rpc, /^[0-9a-f]{64}$/);
});

Deno.test("deriveKey rejects an empty secret", async () => {
  await assert.rejects(deriveKey("", "api-cable"), EmptySecretError);
});

Deno.test("hmacSha256Hex matches RFC 4231 test case 2", async () => {
  assert.equal(
    await hmacSha256Hex("Jefe", "what do ya want for nothing?"),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});

Deno.test("hmacBytes supports SHA-384 and SHA-512 (RFC 4231 test case 2)", async () => {
  assert.equal(
    toHex(await hmacBytes("Jefe", "what do ya want for nothing?", "SHA-384")),
    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e" +
      "8e2240ca5e69e2c78b3239ecfab21649",
  );
  assert.equal(
    toHex(await hmacBytes("Jefe", "what do ya want for nothing?", "SHA-512")),
    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" +
      "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
  );
});

Deno.test("hmac encodes keys and messages as UTF-8", async () => {
  const a = await hmacSha256Hex("clé", "ünïcödé ✓");
  const b = await hmacSha256Hex("cle", "ünïcödé ✓");
  assert.notEqual(a, b);
  assert.equal(await hmacSha256Hex("clé", "ünïcödé ✓"), a);
});

Deno.test("hmac rejects an empty key", async () => {
  await assert.rejects(hmacSha256Hex("", "x"), EmptySecretError);
  await assert.rejects(hmacBytes("", "x", "SHA-512"), EmptySecretError);
});

Deno.test("the key cache stays correct when many distinct keys are used", async () => {
  const first = await hmacSha256Hex("key-0", "m");
  for (let i = 0; i < 200; i++) await hmacSha256Hex(`key-${i}`, "m");
  assert.equal(await hmacSha256Hex("key-0", "m"), first);
  // Same key string under different hashes must not share a cached CryptoKey.
  const sha256 = await hmacBytes("key-0", "m", "SHA-256");
  const sha512 = await hmacBytes("key-0", "m", "SHA-512");
  assert.equal(sha256.length, 32);
  assert.equal(sha512.length, 64);
});

Deno.test("timingSafeEqual compares strings exactly", () => {
  assert.equal(timingSafeEqual("", ""), true);
  assert.equal(timingSafeEqual("abc", "abc"), true);
  assert.equal(timingSafeEqual("abc", "abd"), false);
  assert.equal(timingSafeEqual("abc", "ab"), false);
  assert.equal(timingSafeEqual("ab", "abc"), false);
  assert.equal(timingSafeEqual("ABC", "abc"), false);
  assert.equal(timingSafeEqual("é", "e"), false);
  assert.equal(timingSafeEqual("\u0100", "\u0000"), false);
});

Deno.test("timingSafeEqualBytes compares byte arrays exactly", () => {
  assert.equal(timingSafeEqualBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(timingSafeEqualBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(timingSafeEqualBytes(new Uint8Array([1]), new Uint8Array([1, 0])), false);
  assert.equal(timingSafeEqualBytes(new Uint8Array(), new Uint8Array()), true);
});

Deno.test("toHex is lowercase and zero-padded", () => {
  assert.equal(toHex(new Uint8Array([0, 10, 255])), "000aff");
});
