// The API as the console calls it: same origin, the key from session storage in a header
// (never in a URL), problem documents (RFC 9457) turned into errors people can act on.

const KEY = "persona-console.api-key";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  forget: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(describe(status, problem));
    this.status = status;
    this.problem = problem ?? {};
  }

  get needsKey() {
    return this.status === 401 || this.status === 403;
  }
}

function describe(status, problem) {
  if (!problem) return `The API answered ${status}.`;
  const fields = (problem.errors ?? []).map((error) => {
    const where = (error.loc ?? []).filter((part) => part !== "body" && part !== "query").join(".");
    return where ? `${where}: ${error.msg}` : error.msg;
  });
  return [problem.detail ?? problem.title ?? `The API answered ${status}.`, ...fields].join(" ");
}

// Paths are relative ("v1/persona"), so the console works under a proxy's path prefix too.
function apiUrl(path, params) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

// `signal` aborts the call when its view is left; the AbortError then goes to the caller.
export async function call(path, { method = "GET", params, body, headers = {}, signal } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const key = apiKey.get();
  if (key) sent["X-API-Key"] = key;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, { detail: "The API did not answer: is it running? Reload to retry." });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// A file from the API, saved by the browser. Without a key the browser fetches it itself
// and streams it to disk; with one it must come through fetch (a link cannot send a
// header) and is held in memory until saved: `persona export` is for the largest.
export async function download(path, params, filename) {
  const url = apiUrl(path, params);
  const link = document.createElement("a");
  link.download = filename;
  const key = apiKey.get();
  if (!key) {
    link.href = url;
    link.click();
    return;
  }
  const response = await fetch(url, { headers: { "X-API-Key": key }, cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  link.href = URL.createObjectURL(await response.blob());
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}
