// Runs the official Durable Streams server conformance suite (vitest) against the Cableway
// whose Durable Streams URL is in DS_BASE_URL (tests/ds_conformance_test.ts starts it).
import { describe } from "vitest";
import { runConformanceTests } from "@durable-streams/server-conformance-tests";

const baseUrl = process.env.DS_BASE_URL;
if (!baseUrl) throw new Error("DS_BASE_URL is not set");

describe(`Cableway (${process.env.DS_BROKER ?? "?"} broker)`, () => {
  runConformanceTests({
    baseUrl,
    longPollTimeoutMs: Number(process.env.DS_LONG_POLL_MS ?? "2000"),
  });
});
