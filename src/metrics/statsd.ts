/**
 * `--statsd_host`: every metrics rotation sends counters (the change over the interval, `|c`)
 * and gauges (`|g`) over UDP, `--statsd_prefix` before each name, the `--metrics_tags` in
 * `--statsd_tags_format` (datadog `|#k:v`, influxdb `name,k=v`, graphite `name;k=v`), lines
 * packed into datagrams of at most `--statsd_max_packet_size` bytes.
 */
import dgram from "node:dgram";
import type { Logger } from "../logger/logger.ts";
import type { MetricSample } from "./metrics.ts";
import { utf8Length } from "../util/utf8_length.ts";

export type StatsdTagsFormat = "datadog" | "influxdb" | "graphite";

export interface StatsdOptions {
  /** `host:port`. */
  host: string;
  prefix: string;
  tagsFormat: StatsdTagsFormat;
  maxPacketSize: number;
  /** `key:value` pairs. */
  tags: string[];
  logger: Logger;
}

export class StatsdWriter {
  readonly #opts: StatsdOptions;
  readonly #socket: dgram.Socket;
  readonly #hostname: string;
  readonly #port: number;
  readonly #tags: [string, string][];

  constructor(opts: StatsdOptions) {
    this.#opts = opts;
    const i = opts.host.lastIndexOf(":");
    this.#hostname = (i > 0 ? opts.host.slice(0, i) : opts.host).replace(/^\[|\]$/g, "");
    this.#port = i > 0 ? Number(opts.host.slice(i + 1)) : 8125;
    this.#tags = opts.tags.map((t) => t.split(/[:=]/, 2) as [string, string])
      .filter((p) => p.length === 2 && p[0] !== "");
    this.#socket = dgram.createSocket(this.#hostname.includes(":") ? "udp6" : "udp4");
    this.#socket.on("error", (err) => opts.logger.warn("statsd send failed", { error: err }));
    this.#socket.unref();
  }

  /** The statsd lines for one rotation. */
  lines(samples: MetricSample[]): string[] {
    return samples.map((s) => this.#line(s));
  }

  #line(s: MetricSample): string {
    const name = this.#opts.prefix + s.name;
    const value = `${Math.trunc(s.value)}|${s.type === "counter" ? "c" : "g"}`;
    if (this.#tags.length === 0) return `${name}:${value}`;
    switch (this.#opts.tagsFormat) {
      case "influxdb":
        return `${name},${this.#tags.map(([k, v]) => `${k}=${v}`).join(",")}:${value}`;
      case "graphite":
        return `${name};${this.#tags.map(([k, v]) => `${k}=${v}`).join(";")}:${value}`;
      default:
        return `${name}:${value}|#${this.#tags.map(([k, v]) => `${k}:${v}`).join(",")}`;
    }
  }

  /** Newline-joined lines, each datagram at most maxPacketSize bytes (a longer line alone). */
  packets(samples: MetricSample[]): string[] {
    const out: string[] = [];
    let cur = "";
    for (const line of this.lines(samples)) {
      const next = cur ? `${cur}\n${line}` : line;
      if (cur && utf8Length(next) > this.#opts.maxPacketSize) {
        out.push(cur);
        cur = line;
      } else {
        cur = next;
      }
    }
    if (cur) out.push(cur);
    return out;
  }

  write(samples: MetricSample[]): void {
    for (const packet of this.packets(samples)) {
      this.#socket.send(packet, this.#port, this.#hostname);
    }
  }

  close(): void {
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
  }
}
