// Personas as cards: every list filter, search, and keyset paging through any number.
// The filters live in the URL's fragment, so a filtered page can be bookmarked and shared
// (the API key never is: it stays in session storage).

import { call, download } from "./api.js";
import { announce, h, loading, place, replace } from "./dom.js";
import { errorBox } from "./errors.js";
import { go } from "./navigation.js";
import { field, genderSelect, tagList } from "./widgets.js";

const PAGE_SIZE = 24;
const TEXT_FILTERS = [
  ["country", "Country", "name or ISO code", 60],
  ["city", "City", "", 80],
  ["occupation", "Occupation", "", 80],
  ["tag", "Tag", "", 120],
  ["interest", "Interest", "", 120],
  ["generator", "Generator", "openai or offline", 32],
  ["request_id", "Request id", "", 36],
];
const MOMENTS = [["created_after", "Created after (UTC)"], ["created_before", "Created before (UTC)"]];
const FILTERS = ["q", ...TEXT_FILTERS.map(([name]) => name), "gender", "min_age", "max_age", ...MOMENTS.map(([name]) => name), "sort"];
const ZONE = /(Z|[+-]\d\d:\d\d)$/;

function filterForm(params) {
  const value = (name) => params.get(name) ?? "";
  const searching = Boolean(value("q"));
  const text = ([name, label, placeholder, max]) =>
    field(label, h("input", { name, value: value(name), placeholder, maxlength: max, autocomplete: "off" }));
  const age = (name, label) => field(label, h("input", { name, type: "number", min: 0, max: 150, inputmode: "numeric", value: value(name) }));
  // The URL holds UTC with its zone; the input takes the wall time alone.
  const moment = ([name, label]) => field(label, h("input", { name, type: "datetime-local", step: 1, value: value(name).replace(ZONE, "") }));
  const orders = searching ? [["", "relevance"], ["created_at", "newest first"], ["age", "youngest first"]] : [["", "newest first"], ["age", "youngest first"]];
  return h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter personas", onsubmit: apply },
    field("Search", h("input", { name: "q", type: "search", value: value("q"), maxlength: 200, placeholder: "words in name, job, place, interests, bio" })),
    h(
      "details",
      { open: FILTERS.some((name) => name !== "q" && params.has(name)) || undefined },
      h("summary", null, "Filters"),
      h(
        "div",
        { class: "filter-grid" },
        TEXT_FILTERS.map(text),
        field("Gender", genderSelect("any", value("gender"))),
        age("min_age", "Min age"),
        age("max_age", "Max age"),
        MOMENTS.map(moment),
        field("Order", h("select", { name: "sort" }, orders.map(([v, label]) => h("option", { value: v, selected: value("sort") === v }, label)))),
      ),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Apply"),
      h("button", { type: "button", class: "secondary", onclick: () => go("#/personas") }, "Clear"),
    ),
  );
}

function apply(event) {
  event.preventDefault();
  const data = new FormData(event.target);
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = String(data.get(name) ?? "").trim();
    if (value) params.set(name, name.startsWith("created_") ? `${value}Z` : value);
  }
  go(`#/personas?${params}`);
}

export function cardGrid(personas) {
  return h(
    "div",
    { class: "cards" },
    personas.map((persona) =>
      h(
        "article",
        { class: "card", dataset: { id: persona.id } },
        h("h2", null, h("a", { href: `#/persona/${persona.id}` }, persona.name)),
        h("p", { class: "meta" }, `${persona.age} · ${persona.gender} · ${place(persona.location)}`),
        h("p", { class: "occupation" }, persona.occupation),
        tagList(persona.tags.slice(0, 6)),
      ),
    ),
  );
}

// The cursor of every page seen for the current filters, kept for the tab's session so
// Previous is a real link (it works in a new tab, unlike the browser's Back); a page
// reached by a shared link has no known previous page and offers the first one.
const TRAIL = "persona-console.trail";

// The filters alone: what a page's URL holds but its place in the paging.
function filtersOf(params) {
  const filters = new URLSearchParams(params);
  filters.delete("cursor");
  filters.delete("page");
  return filters;
}

function trailOf(params, page, cursor) {
  const query = filtersOf(params);
  query.sort();
  const saved = JSON.parse(sessionStorage.getItem(TRAIL) ?? "{}");
  const trail = saved.query === String(query) ? saved.cursors.slice(0, page) : [];
  trail[page - 1] = cursor ?? "";
  sessionStorage.setItem(TRAIL, JSON.stringify({ query: String(query), cursors: trail }));
  return trail;
}

function pageLink(params, page, cursor) {
  const target = filtersOf(params);
  if (cursor) target.set("cursor", cursor);
  if (page > 1) target.set("page", String(page));
  return `#/personas?${target}`;
}

// The export takes the list's filters (not search words, sort or paging).
const EXPORTS = [["jsonl", "JSON Lines"], ["csv", "CSV"], ["parquet", "Parquet"]];

function downloads(params) {
  const filters = Object.fromEntries(FILTERS.filter((name) => !["q", "sort"].includes(name) && params.get(name)).map((name) => [name, params.get(name)]));
  const problem = h("div");
  const save = async (format) => {
    replace(problem);
    try {
      await download("v1/persona/export", { ...filters, format }, `personas.${format}`);
    } catch (error) {
      replace(problem, errorBox(error));
    }
  };
  return h(
    "div",
    { class: "downloads" },
    h("span", null, "Download every persona these filters match:"),
    EXPORTS.map(([format, label]) => h("button", { type: "button", class: "secondary", onclick: () => save(format) }, label)),
    problem,
  );
}

function query(params) {
  const sent = { limit: PAGE_SIZE };
  for (const name of [...FILTERS, "cursor"]) if (params.get(name)) sent[name] = params.get(name);
  return sent;
}

export async function render(main, { params, signal }) {
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const searching = Boolean(params.get("q"));
  const shown = h("div", { class: "gallery" }, loading("personas"));
  replace(main, h("h1", null, searching ? `Personas matching “${params.get("q")}”` : "Personas"), filterForm(params), shown);
  const found = await call(searching ? "v1/persona/search" : "v1/persona", { params: query(params), signal });
  if (signal.aborted) return;
  const trail = trailOf(params, page, params.get("cursor"));
  const first = (page - 1) * PAGE_SIZE + 1;
  const summary = found.items.length
    ? `Showing ${first}–${first + found.items.length - 1}${found.next_cursor ? "" : " (the last page)"}`
    : "No persona matches these filters.";
  announce(summary);
  const previous = page > 1 && trail[page - 2] !== undefined ? pageLink(params, page - 1, trail[page - 2]) : null;
  replace(
    shown,
    h("p", { class: "summary", id: "page-summary" }, summary),
    searching || !found.items.length ? null : downloads(params),
    cardGrid(found.items),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      previous ? h("a", { class: "button secondary", href: previous, rel: "prev" }, "← Previous") : null,
      page > 2 || (page > 1 && !previous) ? h("a", { class: "button secondary", href: pageLink(params, 1) }, "First page") : null,
      found.next_cursor ? h("a", { class: "button", href: pageLink(params, page + 1, found.next_cursor), rel: "next" }, "Next →") : null,
    ),
  );
}
