// The console's shell: a hash router over the views. A view that fails shows why above
// what it had drawn; a new key re-renders the view (but a form being filled in).

import { destroyCharts } from "./charts.js";
import { h, replace } from "./dom.js";
import { errorBox } from "./errors.js";
import * as gallery from "./gallery.js";
import { onKeyChange } from "./key_dialog.js";
import * as newRequest from "./new_request.js";
import * as persona from "./persona.js";
import * as population from "./population.js";
import * as request from "./request.js";

const UUID = "([0-9a-fA-F-]{36})";
const ROUTES = [
  { view: "personas", title: "Personas", pattern: /^\/(?:personas)?$/, render: gallery.render },
  { view: "personas", title: "Persona", pattern: new RegExp(`^/persona/${UUID}$`), render: persona.render },
  { view: "population", title: "Population", pattern: /^\/population$/, render: population.render },
  { view: "new", title: "Request", pattern: new RegExp(`^/requests/${UUID}$`), render: request.render },
  { view: "new", title: "New request", pattern: /^\/new$/, render: newRequest.render, keepsOnKeyChange: true },
];

const main = document.getElementById("main");
let current = { controller: new AbortController(), route: null };

function parseHash() {
  const view = location.hash.startsWith("#/") ? location.hash.slice(1) : "/personas";
  const [path, ...query] = view.split("?");
  let decoded;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    decoded = path;
  }
  return { path: decoded, params: new URLSearchParams(query.join("?")) };
}

async function route() {
  const { path, params } = parseHash();
  current.controller.abort();
  const controller = new AbortController();
  const match = ROUTES.map((r) => ({ ...r, found: r.pattern.exec(path) })).find((r) => r.found);
  current = { controller, route: match };
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === match?.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  destroyCharts(main);
  document.title = `${match?.title ?? "Not found"} · Persona console`;
  main.focus();
  if (!match) {
    replace(main, h("h1", null, "Not found"), h("p", null, h("a", { href: "#/personas" }, "Back to the personas")));
    return;
  }
  try {
    await match.render(main, { id: match.found[1], params, signal: controller.signal });
  } catch (error) {
    if (!controller.signal.aborted) main.prepend(errorBox(error));
  }
}

// The skip link moves the focus without touching the fragment, which holds the view.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
onKeyChange(() => {
  if (!current.route?.keepsOnKeyChange) route();
});
window.addEventListener("hashchange", route);
route();
