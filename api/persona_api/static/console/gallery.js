// Personas as cards: every list filter, search, and keyset paging through any number.
// The filters live in the URL's fragment, so a filtered page can be bookmarked and shared
// (the API key never is: it stays in session storage).

import { call } from "./api.js";
import { h, loading, place, replace } from "./dom.js";

export const PAGE_SIZE = 24;
const TEXT_FILTERS = [
  ["country", "Country", "name or ISO code", 60],
  ["city", "City", "", 80],
  ["occupation", "Occupation", "", 80],
  ["tag", "Tag", "", 120],
  ["interest", "Interest", "", 120],
  ["generator", "Generator", "openai or offline", 32],
  ["request_id", "Request id", "", 36],
];
export const FILTERS = [
  "q", ...TEXT_FILTERS.map(([name]) => name), "gender", "min_age", "max_age",
  "created_after", "created_before", "sort",
];

function field(name, label, input) {
  return h("label", { class: `field field-${name}` }, h("span", null, label), input);
}

function filterForm(params) {
  const value = (name) => params.get(name) ?? "";
  const text = ([name, label, placeholder, max]) =>
    field(name, label, h("input", { name, value: value(name), placeholder, maxlength: max, autocomplete: "off" }));
  const select = (name, options) =>
    h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: value(name) === v }, label)));
  const age = (name, label) =>
    field(name, label, h("input", { name, type: "number", min: 0, max: 150, inputmode: "numeric", value: value(name) }));
  const moment = (name, label) =>
    field(name, label, h("input", { name, type: "datetime-local", step: 1, value: value(name).slice(0, 19) }));
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter personas", onsubmit: apply },
    field("q", "Search", h("input", { name: "q", type: "search", value: value("q"), maxlength: 200, placeholder: "words in name, job, place, interests, bio" })),
    h(
      "details",
      { open: TEXT_FILTERS.some(([n]) => params.has(n)) || params.has("gender") || params.has("min_age") || params.has("max_age") || undefined },
      h("summary", null, "Filters"),
      h(
        "div",
        { class: "filter-grid" },
        TEXT_FILTERS.map(text),
        field("gender", "Gender", select("gender", [["", "any"], ["female", "female"], ["male", "male"], ["non-binary", "non-binary"]])),
        age("min_age", "Min age"),
        age("max_age", "Max age"),
        moment("created_after", "Created after (UTC)"),
        moment("created_before", "Created before (UTC)"),
        field("sort", "Order", select("sort", [["", params.get("q") ? "relevance" : "newest first"], ["created_at", "newest first"], ["age", "youngest first"]])),
      ),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Apply"),
      h("a", { class: "button secondary", href: "#/personas" }, "Clear"),
    ),
  );
  return form;
}

function apply(event) {
  event.preventDefault();
  const data = new FormData(event.target);
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = String(data.get(name) ?? "").trim();
    if (value) params.set(name, name.startsWith("created_") ? `${value}Z` : value);
  }
  location.hash = `#/personas?${params}`;
}

export function card(persona) {
  return h(
    "article",
    { class: "card", dataset: { id: persona.id } },
    h("h2", null, h("a", { href: `#/persona/${persona.id}` }, persona.name)),
    h("p", { class: "meta" }, `${persona.age} · ${persona.gender} · ${place(persona.location)}`),
    h("p", { class: "occupation" }, persona.occupation),
    persona.tags.length ? h("ul", { class: "tags", "aria-label": "Tags" }, persona.tags.slice(0, 6).map((tag) => h("li", null, tag))) : null,
  );
}

export function cardGrid(personas) {
  return h("div", { class: "cards" }, personas.map(card));
}

function query(params, cursor) {
  const sent = {};
  for (const name of FILTERS) if (params.get(name)) sent[name] = params.get(name);
  sent.limit = PAGE_SIZE;
  if (cursor) sent.cursor = cursor;
  return sent;
}

export async function render(main, { params, signal }) {
  const page = Number(params.get("page") ?? 1);
  const searching = Boolean(params.get("q"));
  const results = h("div", { class: "results" }, loading("personas"));
  replace(
    main,
    h("h1", null, searching ? `Personas matching “${params.get("q")}”` : "Personas"),
    filterForm(params),
    results,
  );
  const found = await call(searching ? "v1/persona/search" : "v1/persona", { params: query(params, params.get("cursor")) });
  if (signal.aborted) return;
  const first = (page - 1) * PAGE_SIZE + 1;
  const summary = found.items.length
    ? `Showing ${first}–${first + found.items.length - 1}${found.next_cursor ? "" : " (the last page)"}`
    : "No persona matches these filters.";
  const next = new URLSearchParams(params);
  next.set("cursor", found.next_cursor ?? "");
  next.set("page", String(page + 1));
  replace(
    results,
    h("p", { class: "summary", role: "status", id: "page-summary" }, summary),
    cardGrid(found.items),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      page > 1 ? h("button", { type: "button", class: "secondary", onclick: () => history.back() }, "← Previous") : null,
      page > 1 ? h("a", { class: "button secondary", href: firstPage(params) }, "First page") : null,
      found.next_cursor ? h("a", { class: "button", href: `#/personas?${next}`, rel: "next" }, "Next →") : null,
    ),
  );
}

function firstPage(params) {
  const first = new URLSearchParams(params);
  first.delete("cursor");
  first.delete("page");
  return `#/personas?${first}`;
}
