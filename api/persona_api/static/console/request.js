// One request, live: its progress while it runs, its personas as they are stored, and
// once it ends its population next to the plan it was drawn from.

import { ApiError, call } from "./api.js";
import { announce, formatCost, formatNumber, formatTime, h, loading, replace } from "./dom.js";
import { errorBox } from "./errors.js";
import { cardGrid } from "./gallery.js";
import { planned, population, tiles } from "./charts.js";
import { bulletList, facts, sourceBadge } from "./widgets.js";

const POLL_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const FINAL = new Set(["completed", "partial", "failed", "cancelled"]);
const SHOWN = 12;

// A wait the poll can be woken from (after a cancel) and that ends when the view is left.
function ticker(signal) {
  let wake = () => {};
  return {
    wait: (ms) =>
      new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done, { once: true });
        wake = done;
      }),
    wake: () => wake(),
  };
}

// Built once and updated in place, so the Cancel button keeps the keyboard focus and a
// screen reader hears the state change, not the whole panel every second.
function progressPanel(id, onCancelled) {
  const state = h("span", { class: "state", id: "request-state" });
  const eta = h("span");
  const bar = h("progress", { "aria-label": "Personas done" });
  const counts = h("p", { id: "request-counts" });
  const details = h("div");
  const problem = h("div");
  const cancel = h("button", { type: "button", class: "secondary", id: "cancel-request" }, "Cancel the request");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    replace(problem);
    try {
      await call(`v1/requests/${id}/cancel`, { method: "POST" });
      onCancelled();
    } catch (error) {
      replace(problem, errorBox(error));
      cancel.disabled = false;
    }
  });
  const element = h(
    "section",
    { class: "progress", "aria-labelledby": "progress-title" },
    h("h2", { id: "progress-title" }, "Progress"),
    h("p", null, state, eta),
    bar,
    counts,
    details,
    cancel,
    problem,
  );
  function update(status) {
    const final = FINAL.has(status.status);
    const shown = status.cancel_requested && !final ? `${status.status} (cancelling)` : status.status;
    if (state.textContent !== shown) announce(`Request ${shown}`);
    state.textContent = shown;
    state.className = `state state-${status.status}`;
    eta.textContent = status.eta_s && !final ? ` · about ${Math.ceil(status.eta_s)} s left` : "";
    bar.max = status.requested;
    bar.value = status.stored + status.failed;
    counts.textContent = `${formatNumber(status.stored)} of ${formatNumber(status.requested)} stored${status.failed ? `, ${formatNumber(status.failed)} failed` : ""}`;
    cancel.hidden = final || status.cancel_requested;
    replace(
      details,
      status.shards ? h("p", null, `Shards: ${status.shards.done} of ${status.shards.total} done`) : null,
      status.error ? h("p", { class: "error" }, status.error) : null,
      facts([
        ["Generator", status.generator ? `${status.generator} (${status.mode ?? "sync"})` : "not taken yet"],
        ["Tokens", `${formatNumber(status.prompt_tokens)} prompt, ${formatNumber(status.completion_tokens)} completion`],
        ["Cost", formatCost(status.cost_usd)],
        ["Created", formatTime(status.created_at)],
        ["Finished", formatTime(status.finished_at)],
      ]),
    );
  }
  return { element, update };
}

function planDetails(plan) {
  return h(
    "section",
    { class: "plan", "aria-labelledby": "plan-title" },
    h("h2", { id: "plan-title" }, "Audience plan"),
    facts([
      ["Subject", plan.subject ?? "none"],
      ["Locations", sourceBadge(plan.locations.source)],
      ["Ages", sourceBadge(plan.ages.source)],
      ["Genders", sourceBadge(plan.genders.source)],
      ["Occupations", sourceBadge(plan.occupations.source)],
      ...plan.traits.map((trait) => [`Trait: ${trait.name}`, sourceBadge(trait.source)]),
      ["Language", `${plan.language.code} (${plan.language.source})`],
      ["Planner", plan.planning.model ? `${plan.planning.planner} (${plan.planning.model})` : plan.planning.planner],
    ]),
    plan.planning.notes.length ? bulletList(plan.planning.notes, "notes") : null,
    h("p", { class: "hint" }, "brief: stated by the brief; constraints: set by the request; default: real-world shares."),
  );
}

async function outcome(id, signal) {
  const found = await call(`v1/requests/${id}/population`, { signal });
  return [
    h("h2", { id: "outcome-title" }, "Plan and result"),
    tiles(found.stats),
    found.plan.length ? h("div", { class: "charts" }, found.plan.map(planned)) : null,
    h("h2", null, "This request's population"),
    population(found.stats),
  ];
}

async function newest(id, signal) {
  const page = await call("v1/persona", { params: { request_id: id, limit: SHOWN }, signal });
  return [
    h("h2", { id: "newest-title" }, page.items.length ? "Newest personas of this request" : "No persona stored yet"),
    cardGrid(page.items),
    page.items.length ? h("p", null, h("a", { href: `#/personas?request_id=${id}` }, "All personas of this request")) : null,
  ];
}

// Errors that polling again cannot mend end the view; others (a network blip, a 503) are
// shown and retried with growing pauses.
const fatal = (error) => error instanceof ApiError && [401, 403, 404].includes(error.status);

export async function render(main, { id, signal }) {
  replace(main, loading("the request"));
  let status = await call(`v1/requests/${id}`, { signal });
  if (signal.aborted) return;
  const clock = ticker(signal);
  const progress = progressPanel(id, () => clock.wake());
  const plan = h("div");
  const latest = h("section", { class: "latest", "aria-labelledby": "newest-title" });
  const result = h("section", { class: "outcome", "aria-labelledby": "outcome-title" });
  const trouble = h("div");
  replace(
    main,
    h("p", null, h("a", { href: "#/new" }, "← New request")),
    h("h1", null, "Request"),
    h("p", { class: "lead brief" }, status.brief),
    h("p", { class: "hint" }, h("code", null, id)),
    trouble,
    h("div", { class: "request-top" }, progress.element, plan),
    latest,
    result,
  );
  let lastStored = -1;
  let failures = 0;
  while (!signal.aborted) {
    try {
      progress.update(status);
      if (status.plan && !plan.firstChild) replace(plan, planDetails(status.plan));
      const final = FINAL.has(status.status);
      if (status.stored !== lastStored || final) {
        replace(latest, ...(await newest(id, signal)));
        lastStored = status.stored;
      }
      if (final) {
        replace(result, loading("the request's population"));
        replace(result, ...(await outcome(id, signal)));
        return;
      }
      await clock.wait(POLL_MS);
      if (signal.aborted) return;
      status = await call(`v1/requests/${id}`, { signal });
      failures = 0;
      replace(trouble);
    } catch (error) {
      if (signal.aborted || fatal(error)) throw error;
      failures += 1;
      replace(trouble, errorBox(error));
      await clock.wait(Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** failures));
    }
  }
}
