// One persona in full: who, the plan cell it was drawn from, and what it cost.

import { call } from "./api.js";
import { formatCost, formatNumber, formatTime, h, loading, place, replace } from "./dom.js";
import { bulletList, facts, tagList } from "./widgets.js";

const TRAITS = ["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"];

const section = (title, ...content) => h("section", null, h("h2", null, title), ...content);

function personality(scores) {
  return h(
    "dl",
    { class: "traits" },
    TRAITS.map((trait) => [
      h("dt", null, trait),
      h("dd", null, h("meter", { min: 0, max: 1, value: scores[trait], "aria-label": trait }), ` ${scores[trait].toFixed(2)}`),
    ]),
  );
}

function planCell(cell) {
  if (!cell) return null;
  const traits = Object.entries(cell.traits).map(([name, value]) => `${name}: ${value}`);
  return [cell.location, cell.age_band, cell.gender, cell.occupation, ...traits].join(" · ");
}

export async function render(main, { id, signal }) {
  replace(main, loading("the persona"));
  const persona = await call(`v1/persona/${id}`, { signal });
  if (signal.aborted) return;
  document.title = `${persona.name} · Persona console`;
  replace(
    main,
    h("p", null, h("a", { href: "#/personas" }, "← All personas")),
    h("h1", null, persona.name),
    h("p", { class: "lead" }, `${persona.age} · ${persona.gender} · ${persona.occupation} · ${place(persona.location)}`),
    h(
      "div",
      { class: "persona" },
      h(
        "div",
        null,
        section("Bio", h("p", { class: "bio" }, persona.bio)),
        section("Interests", bulletList(persona.interests)),
        section("Goals", bulletList(persona.goals)),
        section("Pain points", bulletList(persona.pain_points)),
        persona.tags.length ? section("Tags", tagList(persona.tags)) : null,
      ),
      h(
        "aside",
        null,
        section("Personality (Big Five)", personality(persona.personality)),
        section(
          "Where it came from",
          facts([
            ["Region", persona.location.region],
            ["Country code", persona.location.country_code],
            ["Plan cell", planCell(persona.plan_cell)],
            ["Request", h("a", { href: `#/requests/${persona.request_id}` }, persona.request_id)],
            ["Ordinal", persona.ordinal],
            ["Near-duplicate of", persona.near_duplicate_of ? h("a", { href: `#/persona/${persona.near_duplicate_of}` }, persona.near_duplicate_of) : null],
            ["Created", formatTime(persona.created_at)],
            ["Generator", `${persona.generator} / ${persona.model}`],
            ["Tokens", `${formatNumber(persona.usage.prompt_tokens)} prompt, ${formatNumber(persona.usage.completion_tokens)} completion`],
            ["Cost", formatCost(persona.cost_usd)],
            ["Id", h("code", null, persona.id)],
          ]),
          h("p", null, h("a", { href: `#/personas?request_id=${persona.request_id}` }, "Personas of the same request")),
        ),
      ),
    ),
  );
}
