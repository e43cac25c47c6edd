// The pieces several views show, built one way so they look and read the same everywhere.

import { h } from "./dom.js";

export const GENDERS = ["female", "male", "non-binary"];
let fields = 0;

// A labelled input; a hint is linked by aria-describedby, outside the label, so it is
// read as a description and not as part of the field's name.
export function field(label, input, hint) {
  const id = `field-${++fields}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", { id: hintId }, hint) : null);
}

export function genderSelect(anyLabel, selected = "") {
  const options = [["", anyLabel], ...GENDERS.map((gender) => [gender, gender])];
  return h("select", { name: "gender" }, options.map(([value, label]) => h("option", { value, selected: selected === value }, label)));
}

// Term and value pairs; rows whose value is empty are left out.
export function facts(rows) {
  const shown = rows.filter(([, value]) => value !== null && value !== undefined && value !== "");
  return h("dl", { class: "facts" }, shown.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}

export function bulletList(items, className) {
  return h("ul", { class: className }, items.map((item) => h("li", null, item)));
}

export function tagList(tags) {
  return tags.length ? h("ul", { class: "tags", "aria-label": "Tags" }, tags.map((tag) => h("li", null, tag))) : null;
}

// Where a dimension of a plan came from: the brief, the constraints, or real-world shares.
export function sourceBadge(source) {
  return source ? h("span", { class: `source source-${source}` }, source) : null;
}
