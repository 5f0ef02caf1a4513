import assert from "node:assert/strict";
import { IDENTITY_CLI_USAGE, runIdentityCli } from "./cli.ts";
import { verifyJwt } from "./jwt.ts";
import { verifyStream } from "./signed_stream.ts";

const NOW_MS = 1_700_000_000_000;
const VECTOR = "ImNoYXQvMjAyMyI=--2b2e054b6413bf3bc7e8bbad2f68962aa2ba19821800ccbd8de6fd7314e8320c";

async function run(args: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runIdentityCli(args, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env: (name) => env[name],
    now: () => NOW_MS,
  });
  return { code, out, err };
}

/** Runs `jwt`, expects success, and returns the verified payload. */
async function jwtPayload(args: string[], secret: string, env: Record<string, string> = {}) {
  const { code, out, err } = await run(["jwt", ...args], env);
  assert.deepEqual({ code, err }, { code: 0, err: [] });
  assert.equal(out.length, 1);
  const result = await verifyJwt(out[0], secret, NOW_MS);
  assert.ok(result.ok, JSON.stringify(result));
  return result;
}

Deno.test("sign-stream prints the protocol test vector", async () => {
  assert.deepEqual(await run(["sign-stream", "chat/2023", "--secret=s3Krit"]), {
    code: 0,
    out: [VECTOR],
    err: [],
  });
  assert.deepEqual((await run(["sign-stream", "--secret", "s3Krit", "chat/2023"])).out, [VECTOR]);
});

Deno.test("sign-stream falls back to ANYCABLE_STREAMS_SECRET, then ANYCABLE_SECRET", async () => {
  const streams = await run(["sign-stream", "chat/2023"], {
    ANYCABLE_STREAMS_SECRET: "s3Krit",
    ANYCABLE_SECRET: "other",
    ANYCABLE_JWT_SECRET: "jwt",
  });
  assert.deepEqual(streams.out, [VECTOR]);
  const app = await run(["sign-stream", "chat/2023"], { ANYCABLE_SECRET: "s3Krit" });
  assert.deepEqual(app.out, [VECTOR]);
  const emptyVar = await run(["sign-stream", "chat/2023"], {
    ANYCABLE_STREAMS_SECRET: "",
    ANYCABLE_SECRET: "s3Krit",
  });
  assert.deepEqual(emptyVar.out, [VECTOR]);
  const flag = await run(["sign-stream", "chat/2023", "--secret=s3Krit"], { ANYCABLE_SECRET: "x" });
  assert.deepEqual(flag.out, [VECTOR]);
});

Deno.test("sign-stream handles unicode and dash-leading names", async () => {
  const uni = await run(["sign-stream", "чат/🚡", "--secret=k"]);
  assert.equal(await verifyStream(uni.out[0], "k"), "чат/🚡");
  const dashed = await run(["sign-stream", "--secret=k", "--", "--room"]);
  assert.equal(dashed.code, 0);
  assert.equal(await verifyStream(dashed.out[0], "k"), "--room");
});

Deno.test("sign-stream errors: missing secret, empty secret, bad arity, unknown option", async () => {
  const cases: string[][] = [
    ["sign-stream", "chat"],
    ["sign-stream", "chat", "--secret="],
    ["sign-stream", "--secret=k"],
    ["sign-stream", "a", "b", "--secret=k"],
    ["sign-stream", "chat", "--secret=k", "--bogus"],
  ];
  for (const args of cases) {
    const { code, out, err } = await run(args, { ANYCABLE_JWT_SECRET: "not-for-streams" });
    assert.equal(code, 1, args.join(" "));
    assert.deepEqual(out, []);
    assert.match(err[0], /^error: /);
  }
  const missing = await run(["sign-stream", "chat"]);
  assert.match(missing.err[0], /ANYCABLE_STREAMS_SECRET/);
});

Deno.test("jwt --ext keeps the JSON text verbatim", async () => {
  const result = await jwtPayload(["--secret=k", '--ext={"user_id":42}'], "k");
  assert.equal(result.identifiers, '{"user_id":42}');
  assert.deepEqual(result.payload, { ext: '{"user_id":42}' });
});

Deno.test("jwt --id pairs build the identifiers (merged over --ext)", async () => {
  const ids = await jwtPayload(
    ["--secret=k", "--id", "user=gid://app/User/1", "--id=tenant=a=b"],
    "k",
  );
  assert.deepEqual(JSON.parse(ids.identifiers), { user: "gid://app/User/1", tenant: "a=b" });

  const merged = await jwtPayload(
    ["--secret=k", '--ext={"user_id":42,"role":"admin"}', "--id=role=guest"],
    "k",
  );
  assert.deepEqual(JSON.parse(merged.identifiers), { user_id: 42, role: "guest" });

  const empty = await jwtPayload(["--secret=k", "--id=note="], "k");
  assert.deepEqual(JSON.parse(empty.identifiers), { note: "" });
});

Deno.test("jwt without identifiers issues an empty object", async () => {
  const result = await jwtPayload(["--secret=k"], "k");
  assert.equal(result.identifiers, "{}");
});

Deno.test("jwt --ttl sets exp relative to now", async () => {
  const result = await jwtPayload(["--secret=k", "--ttl=3600"], "k");
  assert.equal(result.payload.exp, NOW_MS / 1000 + 3600);
  const noTtl = await jwtPayload(["--secret=k"], "k");
  assert.equal(Object.hasOwn(noTtl.payload, "exp"), false);
});

Deno.test("jwt --alg selects HS384/HS512", async () => {
  for (const alg of ["HS384", "HS512"]) {
    const { out } = await run(["jwt", "--secret=k", `--alg=${alg}`]);
    const header = JSON.parse(atob(out[0].split(".")[0].replace(/-/g, "+").replace(/_/g, "/")));
    assert.equal(header.alg, alg);
    assert.equal((await verifyJwt(out[0], "k", NOW_MS)).ok, true);
  }
});

Deno.test("jwt falls back to ANYCABLE_JWT_SECRET, then ANYCABLE_SECRET", async () => {
  const env = { ANYCABLE_JWT_SECRET: "jwt", ANYCABLE_SECRET: "app", ANYCABLE_STREAMS_SECRET: "s" };
  await jwtPayload([], "jwt", env);
  await jwtPayload([], "app", { ANYCABLE_SECRET: "app", ANYCABLE_STREAMS_SECRET: "s" });
  await jwtPayload(["--secret=flag"], "flag", env);
});

Deno.test("jwt errors exit 1 with a message on stderr", async () => {
  const cases: string[][] = [
    ["jwt"],
    ["jwt", "--secret="],
    ["jwt", "--secret=k", "--ext=not json"],
    ["jwt", "--secret=k", "--ext=[1,2]"],
    ["jwt", "--secret=k", "--ext=null"],
    ["jwt", "--secret=k", "--id=novalue"],
    ["jwt", "--secret=k", "--id==value"],
    ["jwt", "--secret=k", "--ttl=0"],
    ["jwt", "--secret=k", "--ttl=-5"],
    ["jwt", "--secret=k", "--ttl=1.5"],
    ["jwt", "--secret=k", "--ttl=soon"],
    ["jwt", "--secret=k", "--ttl=99999999999999999999"],
    ["jwt", "--secret=k", "--alg=none"],
    ["jwt", "--secret=k", "--alg=RS256"],
    ["jwt", "--secret=k", "extra"],
    ["jwt", "--secret=k", "--unknown"],
    ["jwt", "--secret"],
  ];
  for (const args of cases) {
    const { code, out, err } = await run(args, { ANYCABLE_STREAMS_SECRET: "not-for-jwt" });
    assert.equal(code, 1, args.join(" "));
    assert.deepEqual(out, [], args.join(" "));
    assert.match(err[0], /^error: /, args.join(" "));
  }
  assert.match((await run(["jwt"])).err[0], /ANYCABLE_JWT_SECRET/);
});

Deno.test("--help prints usage and exits 0", async () => {
  for (const args of [["--help"], ["-h"], ["help"], ["sign-stream", "--help"], ["jwt", "-h"]]) {
    assert.deepEqual(await run(args), { code: 0, out: [IDENTITY_CLI_USAGE], err: [] });
  }
  assert.match(IDENTITY_CLI_USAGE, /sign-stream/);
  assert.match(IDENTITY_CLI_USAGE, /--ttl/);
});

Deno.test("unknown or missing subcommand exits 1", async () => {
  for (const args of [[], ["frobnicate"]]) {
    const { code, out, err } = await run(args);
    assert.equal(code, 1);
    assert.deepEqual(out, []);
    assert.match(err[0], /^error: (missing|unknown) subcommand/);
  }
});
