/**
 * Metrics writers: statsd over UDP (a real UDP listener here), the metrics log with its filter,
 * the rotation interval; byte counters count UTF-8 bytes.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { StatsdWriter } from "../src/metrics/statsd.ts";
import { silentLogger } from "../src/logger/logger.ts";
import { startServer } from "./support/server.ts";
import { WsClient } from "./support/ws_client.ts";

const samples = [
  { name: "clients_num", type: "gauge" as const, value: 3 },
  { name: "client_msg_total", type: "counter" as const, value: 7 },
];

Deno.test("statsd lines in the three tag formats; datagrams bounded by the packet size", () => {
  const make = (tagsFormat: "datadog" | "influxdb" | "graphite", tags = ["env:prod", "r:eu"]) =>
    new StatsdWriter({
      host: "127.0.0.1:9",
      prefix: "anycable_go.",
      tagsFormat,
      maxPacketSize: 1400,
      tags,
      logger: silentLogger,
    });
  const dd = make("datadog");
  assert.deepEqual(dd.lines(samples), [
    "anycable_go.clients_num:3|g|#env:prod,r:eu",
    "anycable_go.client_msg_total:7|c|#env:prod,r:eu",
  ]);
  const influx = make("influxdb");
  assert.deepEqual(influx.lines(samples), [
    "anycable_go.clients_num,env=prod,r=eu:3|g",
    "anycable_go.client_msg_total,env=prod,r=eu:7|c",
  ]);
  const graphite = make("graphite");
  assert.deepEqual(graphite.lines(samples), [
    "anycable_go.clients_num;env=prod;r=eu:3|g",
    "anycable_go.client_msg_total;env=prod;r=eu:7|c",
  ]);
  assert.deepEqual(make("datadog", []).lines(samples), [
    "anycable_go.clients_num:3|g",
    "anycable_go.client_msg_total:7|c",
  ]);
  const small = new StatsdWriter({
    host: "127.0.0.1:9",
    prefix: "p.",
    tagsFormat: "datadog",
    maxPacketSize: 40,
    tags: [],
    logger: silentLogger,
  });
  const many = Array.from({ length: 10 }, (_, i) => ({
    name: `metric_${i}`,
    type: "counter" as const,
    value: i,
  }));
  const packets = small.packets(many);
  assert.ok(packets.length > 1);
  for (const p of packets) assert.ok(new TextEncoder().encode(p).length <= 40, p);
  assert.equal(packets.join("\n").split("\n").length, 10);
  for (const w of [dd, influx, graphite, small]) w.close();
});

Deno.test("--statsd_host: a UDP listener receives the metrics every rotation; byte counters count UTF-8 bytes", async () => {
  const udp = dgram.createSocket("udp4");
  const datagrams: string[] = [];
  udp.on("message", (msg) => datagrams.push(new TextDecoder().decode(msg)));
  await new Promise<void>((r) => udp.bind(0, "127.0.0.1", () => r()));
  const port = udp.address().port;
  const server = await startServer([
    "--norpc",
    "--public",
    "--metrics_http=/metrics",
    `--statsd_host=127.0.0.1:${port}`,
    "--statsd_prefix=cw.",
    "--statsd_tags_format=influxdb",
    "--statsd_max_packet_size=300",
    "--metrics_tags=env:test",
    "--metrics_rotate_interval=1",
    "--metrics_log",
    "--metrics_log_filter=clients_num,data_rcvd_total",
  ]);
  const client = new WsClient(server.wsUrl);
  try {
    await client.waitFor((f) => f.type === "welcome");
    const identifier = JSON.stringify({ channel: "$pubsub", stream_name: "ünï" });
    const frames = [
      JSON.stringify({ command: "subscribe", identifier }),
      JSON.stringify({ command: "whisper", identifier, data: { t: "€ 😀 ü" } }),
    ];
    client.send(frames[0]);
    await client.waitFor((f) => f.type === "confirm_subscription");
    client.send(frames[1]);
    const bytes = frames.reduce((n, f) => n + new TextEncoder().encode(f).length, 0);
    assert.ok(bytes > frames.reduce((n, f) => n + f.length, 0), "multi-byte characters");

    const text = async () => await (await fetch(`${server.url}/metrics`)).text();
    const rcvd = (t: string) => Number(t.match(/anycable_go_data_rcvd_total\S* (\d+)/)?.[1]);
    const deadline = Date.now() + 10_000;
    while (rcvd(await text()) < bytes && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(rcvd(await text()), bytes, "data_rcvd_total in bytes");

    // Wait for the statsd counters to add up to the same total.
    const sum = () =>
      datagrams.flatMap((d) => d.split("\n"))
        .map((l) => l.match(/^cw\.data_rcvd_total,env=test:(\d+)\|c$/))
        .reduce((n, m) => n + (m ? Number(m[1]) : 0), 0);
    while (sum() < bytes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(sum(), bytes, "statsd counters are per-interval changes that add up");
    const lines = datagrams.flatMap((d) => d.split("\n"));
    assert.ok(lines.includes("cw.clients_num,env=test:1|g"), lines.join("\n"));
    for (const d of datagrams) assert.ok(new TextEncoder().encode(d).length <= 300);
    assert.ok(datagrams.some((d) => d.includes("\n")), "several lines per datagram");

    const stats = server.logs.filter((l) => l.msg === "stats");
    assert.ok(stats.length >= 1);
    assert.deepEqual(
      Object.keys(stats[0]).filter((k) => k.endsWith("_num") || k.endsWith("_total")).sort(),
      [
        "clients_num",
        "data_rcvd_total",
      ],
    );
  } finally {
    await client.close();
    await server.stop();
    udp.close();
  }
});
