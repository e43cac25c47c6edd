// Start a request: a brief, a count and the constraints that override it; preview the
// plan the worker will draw from, then generate from exactly that plan.

import { call } from "./api.js";
import { formatCost, h, replace } from "./dom.js";
import { errorBox } from "./errors.js";
import { bulletList, field, genderSelect, sourceBadge } from "./widgets.js";

const MAX_BRIEF = 2000;
const MAX_COUNT = 10000;

function form() {
  return h(
    "form",
    { class: "new-request", id: "new-request" },
    field("Brief", h("textarea", { name: "brief", required: true, maxlength: MAX_BRIEF, rows: 3, placeholder: "e.g. night-shift nurses in Leeds who cycle to work" })),
    h(
      "div",
      { class: "filter-grid" },
      field("Personas", h("input", { name: "count", type: "number", min: 1, max: MAX_COUNT, value: 10, required: true })),
      field("Country", h("input", { name: "country", maxlength: 80 }), "overrides the brief"),
      field("Occupation", h("input", { name: "occupation", maxlength: 80 })),
      field("Gender", genderSelect("as the brief says")),
      field("Min age", h("input", { name: "min_age", type: "number", min: 16, max: 100 })),
      field("Max age", h("input", { name: "max_age", type: "number", min: 16, max: 100 })),
      field("Language", h("input", { name: "locale", maxlength: 6, placeholder: "e.g. de-DE", pattern: "[a-z]{2,3}(-[A-Z]{2})?" })),
      field("Seed", h("input", { name: "seed", type: "number", min: 0 }), "the same seed draws the same people"),
      field("Cost cap (USD)", h("input", { name: "max_cost_usd", type: "number", min: 0.0001, step: "any" })),
    ),
    h("p", { class: "hint" }, "Constraints override what the brief implies. Preview the plan to see the exact count each place, age band, gender and occupation gets."),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", value: "preview", class: "secondary" }, "Preview the plan"),
      h("button", { type: "submit", value: "start" }, "Start generating"),
    ),
  );
}

// The body of `POST /v1/plans` and `POST /v1/persona`; empty fields are left out.
function body(data) {
  const number = (name) => (data.get(name) ? Number(data.get(name)) : undefined);
  const text = (name) => String(data.get(name) ?? "").trim() || undefined;
  const constraints = {
    country: text("country"),
    occupation: text("occupation"),
    genders: text("gender") ? { [text("gender")]: 1 } : undefined,
    min_age: number("min_age"),
    max_age: number("max_age"),
    locale: text("locale"),
  };
  return {
    brief: text("brief") ?? "",
    count: number("count") ?? 1,
    constraints: Object.fromEntries(Object.entries(constraints).filter(([, v]) => v !== undefined)),
    seed: number("seed"),
    max_cost_usd: number("max_cost_usd"),
  };
}

function quotaTable(title, quotas, source) {
  return h(
    "table",
    { class: "quotas" },
    h("caption", null, title, sourceBadge(source)),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Option"), h("th", { scope: "col" }, "Share"), h("th", { scope: "col" }, "Personas"))),
    h("tbody", null, quotas.map((q) => h("tr", null, h("th", { scope: "row" }, q.label), h("td", null, `${(100 * q.share).toFixed(1)} %`), h("td", null, q.count)))),
  );
}

function preview(found) {
  const { plan, quotas } = found;
  return h(
    "section",
    { class: "preview", id: "plan-preview", "aria-labelledby": "preview-title", tabindex: -1 },
    h("h2", { id: "preview-title" }, `The plan for ${found.count} personas`),
    plan.subject ? h("p", null, "Subject: ", h("strong", null, plan.subject)) : null,
    plan.planning.notes.length ? bulletList(plan.planning.notes, "notes") : null,
    plan.planning.cost_usd ? h("p", { class: "hint" }, `Planning cost ${formatCost(plan.planning.cost_usd)}`) : null,
    h(
      "div",
      { class: "quota-grid" },
      quotaTable("Locations", quotas.locations, plan.locations.source),
      quotaTable("Ages", quotas.ages, plan.ages.source),
      quotaTable("Genders", quotas.genders, plan.genders.source),
      quotaTable("Occupations", quotas.occupations, plan.occupations.source),
      Object.entries(quotas.traits).map(([name, q]) => quotaTable(name, q, plan.traits.find((t) => t.name === name)?.source)),
    ),
    h("p", { class: "hint" }, "Start generating to draw the personas from exactly this plan."),
  );
}

// One key per distinct body: a retried click after a lost answer never queues it twice.
// (Not crypto.randomUUID: that exists only on https and localhost.)
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function render(main, { signal }) {
  document.title = "New request · Persona console";
  const shown = form();
  const previewed = h("div");
  const status = h("div", { role: "status" });
  let plan = null;
  let sent = { json: null, key: null };
  replace(main, h("h1", null, "New request"), shown, status, previewed);
  shown.addEventListener("input", () => {
    plan = null;
    replace(previewed);
  });
  shown.addEventListener("submit", async (event) => {
    event.preventDefault();
    const request = body(new FormData(shown));
    const buttons = shown.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    replace(status);
    try {
      if (event.submitter?.value === "preview") {
        const found = await call("v1/plans", { method: "POST", body: request, signal });
        plan = found.plan;
        replace(previewed, preview(found));
        previewed.firstChild.focus();
        return;
      }
      const payload = plan ? { ...request, audience: plan } : request;
      const json = JSON.stringify(payload);
      if (json !== sent.json) sent = { json, key: randomKey() };
      // Not aborted when the view is left: once sent, the request may be queued either way.
      const accepted = await call("v1/persona", { method: "POST", body: payload, headers: { "Idempotency-Key": sent.key } });
      if (!signal.aborted) location.hash = `#/requests/${accepted.request_id}`;
    } catch (error) {
      if (!signal.aborted) replace(status, errorBox(error));
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
}
