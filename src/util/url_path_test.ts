import assert from "node:assert/strict";
import { urlPath } from "./url_path.ts";

Deno.test("urlPath gives what new URL(url).pathname gives", () => {
  const urls = [
    "http://127.0.0.1:8080/cable",
    "http://127.0.0.1:8080/cable?pi=3&sid=x",
    "http://h/cable#frag",
    "http://h/",
    "http://h",
    "https://h:443/a/b/c",
    "http://h//double//slash",
    "http://h/a.b/c-d_e~f",
    "http://h/_broadcast",
    "http://h/apps/app-1/events",
    "http://h/v1/stream/a:b@c!$&'()*+,;=",
    // rewritten by URL parsing: the slow path
    "http://h/a/../cable",
    "http://h/./cable",
    "http://h/a/./b",
    "http://h/a/b/..",
    "http://h/%63able",
    "http://h/a%2Fb",
    "http://h/a b",
    "http://h/a\\b",
    "http://h/é",
    "http://h/a{b}",
    "http://h/.hidden",
    "http://h/trailing.",
    "http://h/a/%2e%2e/b",
  ];
  for (const url of urls) assert.equal(urlPath(url), new URL(url).pathname, url);
});
