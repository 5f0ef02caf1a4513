import assert from "node:assert/strict";
import { encodeHeaders, HpackDecoder, HpackError, huffmanDecode } from "./hpack.ts";

const hex = (text: string) =>
  Uint8Array.from(text.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));

Deno.test("HPACK: RFC 7541 C.2 literal fields", () => {
  const d = new HpackDecoder();
  // C.2.1 literal with indexing
  assert.deepEqual(
    d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")),
    [["custom-key", "custom-header"]],
  );
  assert.equal(d.dynamicSize, 55);
  // C.2.2 literal without indexing
  assert.deepEqual(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468")), [[
    ":path",
    "/sample/path",
  ]]);
  // C.2.3 never indexed
  assert.deepEqual(d.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")), [[
    "password",
    "secret",
  ]]);
  // C.2.4 indexed
  assert.deepEqual(d.decode(hex("82")), [[":method", "GET"]]);
  assert.equal(d.dynamicTable.length, 1);
});

Deno.test("HPACK: RFC 7541 C.4 requests with Huffman coding share the dynamic table", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.equal(d.dynamicSize, 57);
  assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.equal(d.dynamicSize, 110);
  assert.deepEqual(
    d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")),
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  );
  assert.equal(d.dynamicSize, 164);
  assert.deepEqual(d.dynamicTable.map(([n]) => n), ["custom-key", "cache-control", ":authority"]);
});

Deno.test("HPACK: RFC 7541 C.6 responses with Huffman coding and eviction (table size 256)", () => {
  const d = new HpackDecoder({ maxTableSize: 4096 });
  // A size update to 256 first, as a peer honouring SETTINGS_HEADER_TABLE_SIZE=256 would send.
  d.decode(hex("3fe1 01"));
  const date = "Mon, 21 Oct 2013 20:13:21 GMT";
  assert.deepEqual(
    d.decode(hex(
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 " +
        "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    )),
    [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", date],
      ["location", "https://www.example.com"],
    ],
  );
  assert.equal(d.dynamicSize, 222);
  assert.deepEqual(d.decode(hex("4883 640e ffc1 c0bf")), [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", date],
    ["location", "https://www.example.com"],
  ]);
  assert.equal(d.dynamicSize, 222);
  assert.equal(d.dynamicTable[0][1], "307");
});

Deno.test("HPACK: the encoder's literals round-trip; hostile blocks throw HpackError", () => {
  const fields: Array<[string, string]> = [
    [":method", "POST"],
    [":path", "/anycable.RPC/Connect"],
    ["content-type", "application/grpc"],
    ["sid", "x".repeat(300)],
  ];
  assert.deepEqual(new HpackDecoder().decode(encodeHeaders(fields)), fields);
  const bad = [
    "be", // index beyond the tables
    "80", // index 0
    "3fe2 1f", // size update above the allowed maximum
    "82 20", // size update after a field
    "40 8a ff", // truncated Huffman string
    "40 81 ff 00", // Huffman: EOS/invalid code
    "7f ff ff ff ff ff 0f", // integer overflow
    "04 0c 2f", // truncated literal
  ];
  for (const b of bad) assert.throws(() => new HpackDecoder().decode(hex(b)), HpackError, b);
  assert.throws(() => huffmanDecode(hex("00")), HpackError, "padding of zeros");
  const small = new HpackDecoder({ maxHeaderListSize: 100 });
  assert.throws(() => small.decode(encodeHeaders([["a", "b".repeat(200)]])), HpackError);
});

Deno.test("HPACK: long literal values decode whole, one char per octet", () => {
  const long = "v".repeat(10_000) + "end";
  const [[name, value]] = new HpackDecoder().decode(encodeHeaders([["x-long", long]]));
  assert.equal(name, "x-long");
  assert.equal(value, long);
  // a literal (new name, no indexing) whose value holds octets above 0x7f
  const block = new Uint8Array([0x00, 1, 0x61, 3, 0x41, 0xe9, 0xff]);
  assert.deepEqual(new HpackDecoder().decode(block), [["a", "A\u00e9\u00ff"]]);
});

Deno.test("HPACK: encodeHeaders after a prefix block gives both lists in one block", () => {
  const fixed = encodeHeaders([[":method", "POST"], ["content-type", "application/grpc"]]);
  const block = encodeHeaders([["sid", "abc"]], fixed);
  assert.deepEqual(new HpackDecoder().decode(block), [
    [":method", "POST"],
    ["content-type", "application/grpc"],
    ["sid", "abc"],
  ]);
});
