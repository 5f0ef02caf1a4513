import assert from "node:assert/strict";
import { encodeGrpcFrame, GrpcFrameReader, GrpcFramingError } from "./grpc_framing.ts";

const bytes = (...xs: number[]) => new Uint8Array(xs);

Deno.test("GrpcFrameReader: whole, joined and split messages; leftovers", () => {
  const a = encodeGrpcFrame(bytes(1, 2, 3));
  const b = encodeGrpcFrame(bytes());
  const c = encodeGrpcFrame(new Uint8Array(300).fill(7));
  const all = new Uint8Array(a.length + b.length + c.length);
  all.set(a);
  all.set(b, a.length);
  all.set(c, a.length + b.length);

  // in one chunk
  const one = new GrpcFrameReader();
  one.push(all);
  assert.deepEqual(one.messages.map((m) => [...m]), [[1, 2, 3], [], [...c.subarray(5)]]);
  assert.equal(one.leftover, 0);

  // byte by byte: the same messages, whatever the cut
  const split = new GrpcFrameReader();
  for (let i = 0; i < all.length; i++) {
    split.push(all.slice(i, i + 1));
    if (i < all.length - 1) assert.ok(split.leftover > 0 || split.messages.length > 0);
  }
  assert.deepEqual(split.messages.map((m) => [...m]), one.messages.map((m) => [...m]));
  assert.equal(split.leftover, 0);

  // an incomplete message stays as leftover
  const part = new GrpcFrameReader();
  part.push(all.slice(0, a.length + 2));
  assert.equal(part.messages.length, 1);
  assert.equal(part.leftover, 2);
});

Deno.test("GrpcFrameReader: compressed and oversized messages are refused", () => {
  const compressed = encodeGrpcFrame(bytes(9));
  compressed[0] = 1;
  assert.throws(() => new GrpcFrameReader().push(compressed), GrpcFramingError);
  const big = bytes(0, 0x80, 0, 0, 0); // 2^31 bytes announced
  assert.throws(() => new GrpcFrameReader(1024).push(big), /exceeds 1024/);
  const limit = encodeGrpcFrame(new Uint8Array(1025));
  assert.throws(() => new GrpcFrameReader(1024).push(limit), /message of 1025 bytes/);
});
