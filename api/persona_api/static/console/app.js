// The console's shell: a hash router over the views. A view that fails shows why above
// what it had drawn; a new key re-renders the view.

import { h, replace } from "./dom.js";
import { errorBox } from "./errors.js";
import { onKeyChange } from "./key_dialog.js";
import * as gallery from "./gallery.js";
import * as newRequest from "./new_request.js";
import * as persona from "./persona.js";
import * as population from "./population.js";
import * as request from "./request.js";

const UUID = "([0-9a-fA-F-]{36})";
const ROUTES = [
  { view: "personas", pattern: /^\/?(?:personas)?$/, render: gallery.render },
  { view: "personas", pattern: new RegExp(`^/persona/${UUID}$`), render: persona.render },
  { view: "population", pattern: /^\/population$/, render: population.render },
  { view: "new", pattern: new RegExp(`^/requests/${UUID}$`), render: request.render },
  { view: "new", pattern: /^\/new$/, render: newRequest.render },
];

const main = document.getElementById("main");
let current = { controller: new AbortController(), path: null };

function parseHash() {
  const [path, ...query] = (location.hash.slice(1) || "/personas").split("?");
  return { path: decodeURIComponent(path), params: new URLSearchParams(query.join("?")) };
}

async function route() {
  const { path, params } = parseHash();
  current.controller.abort();
  const controller = new AbortController();
  const moved = path !== current.path;
  current = { controller, path };
  const match = ROUTES.map((r) => ({ ...r, found: r.pattern.exec(path) })).find((r) => r.found);
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === match?.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    replace(main, h("h1", null, "Not found"), h("p", null, h("a", { href: "#/personas" }, "Back to the personas")));
    return;
  }
  if (moved) main.focus({ preventScroll: false });
  try {
    await match.render(main, { id: match.found[1], params, signal: controller.signal });
  } catch (error) {
    if (!controller.signal.aborted) main.prepend(errorBox(error));
  }
}

onKeyChange(route);
window.addEventListener("hashchange", route);
route();
