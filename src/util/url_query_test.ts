import assert from "node:assert/strict";
import { urlQuery } from "./url_query.ts";

Deno.test("urlQuery reads what new URL(url).searchParams reads", () => {
  const urls = [
    "http://127.0.0.1:8080/cable",
    "http://127.0.0.1:8080/cable?",
    "http://h/cable?pi=5&ptp=ms",
    "http://h/cable?sid=abc&jwt=x.y.z#frag",
    "http://h/cable?a=1&a=2&b=%20c+d&e",
    "http://h/cable?name=%E2%9C%93&q=a%26b",
    "http://h/cable?pi=5&ptp=ms", // the same URL again: the kept parse
    "http://h/other?pi=7",
  ];
  for (const url of urls) {
    const want = [...new URL(url).searchParams];
    assert.deepEqual([...urlQuery(url)], want, url);
  }
  assert.equal(urlQuery("http://h/cable?pi=5").get("pi"), "5");
  assert.equal(urlQuery("http://h/cable").get("pi"), null);
});
