const EMPTY: URLSearchParams = new URLSearchParams();

let lastUrl = "";
let lastParams: URLSearchParams = EMPTY;

/**
 * The query parameters of a request URL, parsed once per URL: the ping parameters, the restore
 * sid and a JWT all read the same connection's URL one after another, so the last parse is kept
 * (one entry). A URL without `?` costs no parse at all. The result is shared: read it only.
 */
export function urlQuery(url: string): URLSearchParams {
  if (url === lastUrl) return lastParams;
  const q = url.indexOf("?");
  let params = EMPTY;
  if (q >= 0) {
    const hash = url.indexOf("#", q);
    const search = hash < 0 ? url.slice(q + 1) : url.slice(q + 1, hash);
    if (search !== "") params = new URLSearchParams(search);
  }
  lastUrl = url;
  lastParams = params;
  return params;
}
