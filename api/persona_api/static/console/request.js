// One request, live: its progress while it runs, its personas as they are stored, and
// once it ends its population next to the plan it was drawn from.

import { call } from "./api.js";
import { formatCost, formatNumber, formatTime, h, loading, replace } from "./dom.js";
import { cardGrid } from "./gallery.js";
import { planned, population, tiles } from "./charts.js";

const POLL_MS = 1000;
const FINAL = new Set(["completed", "partial", "failed", "cancelled"]);
const SHOWN = 12;

function progress(status) {
  const done = status.stored + status.failed;
  const eta = status.eta_s ? ` · about ${Math.ceil(status.eta_s)} s left` : "";
  return h(
    "section",
    { class: "progress", "aria-labelledby": "progress-title" },
    h("h2", { id: "progress-title" }, "Progress"),
    h("p", null, h("span", { class: `state state-${status.status}`, id: "request-state" }, status.status), status.cancel_requested && !FINAL.has(status.status) ? " (cancelling)" : "", eta),
    h("progress", { max: status.requested, value: done, "aria-label": "Personas done" }),
    h("p", { id: "request-counts" }, `${formatNumber(status.stored)} of ${formatNumber(status.requested)} stored`, status.failed ? `, ${formatNumber(status.failed)} failed` : ""),
    status.shards ? h("p", null, `Shards: ${status.shards.done} of ${status.shards.total} done`) : null,
    status.error ? h("p", { class: "error" }, status.error) : null,
    h(
      "dl",
      { class: "facts" },
      [
        ["Generator", status.generator ? `${status.generator} (${status.mode ?? "sync"})` : "not taken yet"],
        ["Tokens", `${formatNumber(status.prompt_tokens)} prompt, ${formatNumber(status.completion_tokens)} completion`],
        ["Cost", formatCost(status.cost_usd)],
        ["Created", formatTime(status.created_at)],
        ["Finished", formatTime(status.finished_at)],
      ]
        .filter(([, value]) => value)
        .map(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
    ),
  );
}

function source(dimension) {
  return h("span", { class: `source source-${dimension.source}` }, dimension.source);
}

function planDetails(plan) {
  const rows = [
    ["Subject", plan.subject ?? "none"],
    ["Locations", source(plan.locations)],
    ["Ages", source(plan.ages)],
    ["Genders", source(plan.genders)],
    ["Occupations", source(plan.occupations)],
    ...plan.traits.map((trait) => [`Trait: ${trait.name}`, source(trait)]),
    ["Language", `${plan.language.code} (${plan.language.source})`],
    ["Planner", plan.planning.model ? `${plan.planning.planner} (${plan.planning.model})` : plan.planning.planner],
  ];
  return h(
    "section",
    { class: "plan", "aria-labelledby": "plan-title" },
    h("h2", { id: "plan-title" }, "Audience plan"),
    h("dl", { class: "facts" }, rows.map(([term, value]) => [h("dt", null, term), h("dd", null, value)])),
    plan.planning.notes.length ? h("ul", { class: "notes" }, plan.planning.notes.map((note) => h("li", null, note))) : null,
    h("p", { class: "hint" }, "brief: stated by the brief; constraints: set by the request; default: real-world shares."),
  );
}

async function results(requestId) {
  const found = await call(`v1/requests/${requestId}/population`);
  return h(
    "section",
    { class: "results", "aria-labelledby": "results-title" },
    h("h2", { id: "results-title" }, "Plan and result"),
    tiles(found.stats),
    found.plan.length ? h("div", { class: "charts" }, found.plan.map(planned)) : null,
    h("h2", null, "This request's population"),
    population(found.stats),
  );
}

async function latest(requestId) {
  const page = await call("v1/persona", { params: { request_id: requestId, limit: SHOWN } });
  return h(
    "section",
    { class: "latest", "aria-labelledby": "latest-title" },
    h("h2", { id: "latest-title" }, page.items.length ? "Newest personas of this request" : "No persona stored yet"),
    cardGrid(page.items),
    page.items.length ? h("p", null, h("a", { href: `#/personas?request_id=${requestId}` }, "All personas of this request")) : null,
  );
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });

export async function render(main, { id, signal }) {
  replace(main, loading("the request"));
  let status = await call(`v1/requests/${id}`);
  const cancel = h("button", { type: "button", class: "secondary", onclick: async () => { cancel.disabled = true; status = await call(`v1/requests/${id}/cancel`, { method: "POST" }); } }, "Cancel the request");
  const live = { progress: h("div"), plan: h("div"), latest: h("div"), results: h("div") };
  replace(
    main,
    h("p", null, h("a", { href: "#/new" }, "← New request")),
    h("h1", null, "Request"),
    h("p", { class: "lead brief" }, status.brief),
    h("p", { class: "hint" }, h("code", null, id)),
    h("div", { class: "request-top" }, live.progress, live.plan),
    live.latest,
    live.results,
  );
  let lastStored = -1;
  while (!signal.aborted) {
    replace(live.progress, progress(status), FINAL.has(status.status) || status.cancel_requested ? null : cancel);
    if (status.plan && !live.plan.firstChild) replace(live.plan, planDetails(status.plan));
    const final = FINAL.has(status.status);
    if (status.stored !== lastStored || final) {
      lastStored = status.stored;
      replace(live.latest, await latest(id));
    }
    if (final) {
      replace(live.results, loading("the request's population"));
      replace(live.results, await results(id));
      return;
    }
    await sleep(POLL_MS, signal);
    if (signal.aborted) return;
    status = await call(`v1/requests/${id}`);
  }
}
