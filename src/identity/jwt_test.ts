import assert from "node:assert/strict";
import {
  issueToken,
  type JwtAlgorithm,
  signJwt,
  UnsupportedJwtAlgorithmError,
  verifyJwt,
} from "./jwt.ts";
import { EmptySecretError, hmacBytes, type HmacHash } from "../util/secrets.ts";

const SECRET = "jwt-test-secret";
const NOW_MS = 1_700_000_000_000;
const NOW_S = NOW_MS / 1000;
const encoder = new TextEncoder();

function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function segment(value: unknown): string {
  return b64url(encoder.encode(JSON.stringify(value)));
}

/** Builds a token from raw segments, signing independently of the module under test. */
async function craft(
  header: string,
  payload: string,
  secret = SECRET,
  hash: HmacHash = "SHA-256",
): Promise<string> {
  const input = `${header}.${payload}`;
  return `${input}.${b64url(await hmacBytes(secret, input, hash))}`;
}

const HS256_HEADER = segment({ alg: "HS256", typ: "JWT" });

async function assertReason(token: string, reason: string, secret = SECRET, now = NOW_MS) {
  assert.deepEqual(await verifyJwt(token, secret, now), { ok: false, reason });
}

Deno.test("issueToken round-trips: identifiers are the ext string verbatim", async () => {
  const token = await issueToken({ user_id: 42 }, SECRET, 60, NOW_MS);
  const result = await verifyJwt(token, SECRET, NOW_MS);
  assert.deepEqual(result, {
    ok: true,
    identifiers: '{"user_id":42}',
    payload: { ext: '{"user_id":42}', exp: NOW_S + 60 },
  });
});

Deno.test("issueToken keeps a string ext as is and omits exp without a ttl", async () => {
  const ext = '{ "user" : "gid://app/User/1" }';
  const token = await issueToken(ext, SECRET);
  const result = await verifyJwt(token, SECRET, NOW_MS);
  assert.ok(result.ok);
  assert.equal(result.identifiers, ext);
  assert.equal(Object.hasOwn(result.payload, "exp"), false);
});

Deno.test("issueToken computes exp from whole seconds and rejects a non-finite ttl", async () => {
  const token = await issueToken({}, SECRET, 10, NOW_MS + 999);
  const result = await verifyJwt(token, SECRET, NOW_MS);
  assert.ok(result.ok);
  assert.equal(result.payload.exp, NOW_S + 10);
  await assert.rejects(issueToken({}, SECRET, Number.NaN, NOW_MS), RangeError);
  await assert.rejects(issueToken({}, SECRET, Infinity, NOW_MS), RangeError);
});

Deno.test("interop: the jwt.io HS256 sample verifies (and lacks ext)", async () => {
  const sample = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ." +
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  await assertReason(sample, "missing_ext", "your-256-bit-secret");
  await assertReason(sample, "unauthorized", "another-secret");
});

for (const [alg, hash] of [["HS256", "SHA-256"], ["HS384", "SHA-384"], ["HS512", "SHA-512"]]) {
  Deno.test(`${alg} tokens are accepted`, async () => {
    const signed = await signJwt({ ext: '{"id":1}' }, SECRET, alg as JwtAlgorithm);
    const result = await verifyJwt(signed, SECRET, NOW_MS);
    assert.ok(result.ok);
    assert.equal(result.identifiers, '{"id":1}');

    const crafted = await craft(segment({ alg }), segment({ ext: "{}" }), SECRET, hash as HmacHash);
    assert.equal((await verifyJwt(crafted, SECRET, NOW_MS)).ok, true);
  });
}

Deno.test("a header alg that disagrees with the signing hash is unauthorized", async () => {
  const token = await craft(HS256_HEADER, segment({ ext: "{}" }), SECRET, "SHA-512");
  await assertReason(token, "unauthorized");
});

Deno.test("a token signed with another key is unauthorized", async () => {
  const token = await issueToken({ user_id: 1 }, "other-secret", 60, NOW_MS);
  await assertReason(token, "unauthorized");
});

Deno.test("tampered payload or signature is unauthorized", async () => {
  const token = await issueToken({ user_id: 1 }, SECRET, 60, NOW_MS);
  const [h, , s] = token.split(".");
  await assertReason(`${h}.${segment({ ext: '{"user_id":2}' })}.${s}`, "unauthorized");

  const last = s.at(-1) === "A" ? "B" : "A";
  await assertReason(`${token.slice(0, -1)}${last}`, "unauthorized");
  await assertReason(`${h}.${token.split(".")[1]}.`, "unauthorized");
  await assertReason(`${token}=`, "unauthorized");
  await assertReason(token.slice(0, -1), "unauthorized");
});

Deno.test("alg none is unauthorized, with or without a signature", async () => {
  const payload = segment({ ext: '{"user_id":1}' });
  for (const alg of ["none", "None", "NONE"]) {
    const header = segment({ alg, typ: "JWT" });
    await assertReason(`${header}.${payload}.`, "unauthorized");
    await assertReason(await craft(header, payload), "unauthorized");
  }
});

Deno.test("non-HMAC, unknown, missing or odd alg values are unauthorized", async () => {
  const payload = segment({ ext: "{}" });
  const headers: unknown[] = [
    { alg: "RS256" },
    { alg: "ES256" },
    { alg: "PS512" },
    { alg: "EdDSA" },
    { alg: "hs256" },
    { alg: "HS256 " },
    { alg: "constructor" },
    { alg: "__proto__" },
    { alg: "toString" },
    { alg: 256 },
    { alg: null },
    { typ: "JWT" },
  ];
  for (const header of headers) {
    await assertReason(await craft(segment(header), payload), "unauthorized");
  }
});

Deno.test("wrong segment counts are unauthorized", async () => {
  const token = await issueToken({}, SECRET, undefined, NOW_MS);
  const [h, p, s] = token.split(".");
  for (
    const bad of ["", ".", "..", "...", `${h}.${p}`, `${h}.${p}.${s}.${s}`, `${h}`, `${token}.`]
  ) {
    await assertReason(bad, "unauthorized");
  }
});

Deno.test("segments that are not unpadded base64url are unauthorized", async () => {
  const payload = segment({ ext: "{}" });
  // Standard-alphabet characters, padding, whitespace and impossible lengths.
  const badHeaders = [
    `${HS256_HEADER}=`,
    HS256_HEADER.replace(/./, "+"),
    `${HS256_HEADER.slice(0, 4)}/${HS256_HEADER.slice(5)}`,
    ` ${HS256_HEADER}`,
    `${HS256_HEADER.slice(0, 8)} ${HS256_HEADER.slice(8)}`,
    `${HS256_HEADER}A`, // 37 characters: length % 4 === 1 is never valid base64
    "%%%%",
  ];
  assert.equal(`${HS256_HEADER}A`.length % 4, 1);
  for (const header of badHeaders) {
    await assertReason(await craft(header, payload), "unauthorized");
  }
  const badPayloads = [`${payload}=`, `${payload}*`, "A"];
  for (const p of badPayloads) {
    await assertReason(await craft(HS256_HEADER, p), "unauthorized");
  }
});

Deno.test("segments that are not JSON objects are unauthorized", async () => {
  const text = (s: string) => b64url(encoder.encode(s));
  const payload = segment({ ext: "{}" });
  for (const header of [text("not json"), text('["HS256"]'), text("null"), text('"HS256"'), ""]) {
    await assertReason(await craft(header, payload), "unauthorized");
  }
  for (const p of [text("{"), text("[]"), text("null"), text("42"), text('"ext"'), ""]) {
    await assertReason(await craft(HS256_HEADER, p), "unauthorized");
  }
  // Validly signed but not UTF-8.
  const notUtf8 = b64url(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
  await assertReason(await craft(HS256_HEADER, notUtf8), "unauthorized");
});

Deno.test("expired tokens report token_expired with no leeway", async () => {
  await assertReason(await issueToken({}, SECRET, 60, NOW_MS - 61_000), "token_expired");
  // exp == now (in seconds) is already expired.
  await assertReason(
    await craft(HS256_HEADER, segment({ ext: "{}", exp: NOW_S })),
    "token_expired",
  );
  await assertReason(
    await craft(HS256_HEADER, segment({ ext: "{}", exp: NOW_S + 1 })),
    "token_expired",
    SECRET,
    NOW_MS + 1000,
  );
  const live = await craft(HS256_HEADER, segment({ ext: "{}", exp: NOW_S + 1 }));
  assert.equal((await verifyJwt(live, SECRET, NOW_MS + 999)).ok, true);
});

Deno.test("fractional exp is truncated to whole seconds", async () => {
  const token = await craft(HS256_HEADER, segment({ ext: "{}", exp: NOW_S + 0.9 }));
  await assertReason(token, "token_expired");
});

Deno.test("token_expired takes precedence over a missing ext", async () => {
  await assertReason(await craft(HS256_HEADER, segment({ exp: NOW_S - 1 })), "token_expired");
});

Deno.test("a forged expired token is unauthorized, not token_expired", async () => {
  const forged = await craft(HS256_HEADER, segment({ ext: "{}", exp: NOW_S - 100 }), "wrong");
  await assertReason(forged, "unauthorized");
});

Deno.test("exp and nbf must be numbers when present", async () => {
  for (const exp of ["9999999999", null, true, {}, [NOW_S + 60]]) {
    await assertReason(await craft(HS256_HEADER, segment({ ext: "{}", exp })), "unauthorized");
  }
  for (const nbf of ["0", null]) {
    await assertReason(await craft(HS256_HEADER, segment({ ext: "{}", nbf })), "unauthorized");
  }
});

Deno.test("nbf in the future is unauthorized; past or now is accepted", async () => {
  await assertReason(
    await craft(HS256_HEADER, segment({ ext: "{}", nbf: NOW_S + 1 })),
    "unauthorized",
  );
  for (const nbf of [NOW_S, NOW_S - 60]) {
    const token = await craft(HS256_HEADER, segment({ ext: "{}", nbf }));
    assert.equal((await verifyJwt(token, SECRET, NOW_MS)).ok, true);
  }
});

Deno.test("a valid token whose ext is not a string reports missing_ext", async () => {
  for (const payload of [{}, { ext: 42 }, { ext: { user_id: 1 } }, { ext: null }, { sub: "x" }]) {
    await assertReason(await signJwt(payload, SECRET), "missing_ext");
  }
});

Deno.test("an empty ext string is a valid identifiers value", async () => {
  const result = await verifyJwt(await signJwt({ ext: "" }, SECRET), SECRET, NOW_MS);
  assert.deepEqual(result, { ok: true, identifiers: "", payload: { ext: "" } });
});

Deno.test("unicode identifiers survive a round trip", async () => {
  const token = await issueToken({ name: "Zoë 🚡" }, SECRET, 60, NOW_MS);
  const result = await verifyJwt(token, SECRET, NOW_MS);
  assert.ok(result.ok);
  assert.deepEqual(JSON.parse(result.identifiers), { name: "Zoë 🚡" });
});

Deno.test("an empty secret never verifies and never signs", async () => {
  const token = await issueToken({}, SECRET, 60, NOW_MS);
  await assertReason(token, "unauthorized", "");
  // Not even a token crafted to look signed with an empty key.
  await assertReason(`${HS256_HEADER}.${segment({ ext: "{}" })}.`, "unauthorized", "");
  await assert.rejects(signJwt({ ext: "{}" }, ""), EmptySecretError);
  await assert.rejects(issueToken({}, "", 60), EmptySecretError);
});

Deno.test("signJwt rejects algorithms outside HS256/HS384/HS512", async () => {
  for (const alg of ["none", "RS256", "hs256"]) {
    await assert.rejects(
      signJwt({ ext: "{}" }, SECRET, alg as JwtAlgorithm),
      UnsupportedJwtAlgorithmError,
    );
  }
});

Deno.test("signJwt emits a standard header", async () => {
  const token = await signJwt({ ext: "{}" }, SECRET, "HS384");
  const header = JSON.parse(
    new TextDecoder().decode(Uint8Array.fromBase64(token.split(".")[0], { alphabet: "base64url" })),
  );
  assert.deepEqual(header, { alg: "HS384", typ: "JWT" });
});
