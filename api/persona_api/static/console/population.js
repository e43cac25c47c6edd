// The whole store's population, from the counters `GET /v1/persona/stats` keeps.

import { call } from "./api.js";
import { h, loading, replace } from "./dom.js";
import { population, tiles } from "./charts.js";
import { go } from "./navigation.js";

export async function render(main, { signal }) {
  replace(main, h("h1", null, "Population"), loading("the statistics"));
  const stats = await call("v1/persona/stats", { signal });
  if (signal.aborted) return;
  replace(
    main,
    h("h1", null, "Population"),
    h("p", { class: "lead" }, "Every stored persona, counted as it was stored."),
    tiles(stats),
    population(stats),
    h("p", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: () => go(location.hash) }, "Refresh")),
  );
}
