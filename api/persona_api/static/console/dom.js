// Builds elements from data without ever parsing it as HTML: personas are generated text,
// so every value goes in as a text node or an attribute, never through innerHTML.

export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

const numbers = new Intl.NumberFormat();
export const formatNumber = (n) => numbers.format(n);
export const formatCost = (usd) => `$${Number(usd).toFixed(usd >= 1 ? 2 : 4)}`;
export const formatTime = (iso) => (iso ? new Date(iso).toLocaleString() : "");

export function place(location) {
  return [location.city, location.country].filter(Boolean).join(", ");
}

export function loading(what) {
  return h("p", { class: "loading" }, `Loading ${what}…`);
}

// Tells screen readers what a view found (a page of results, a request's new state)
// through one live region that stays in the document: a region inserted with its text
// is often not read at all.
export function announce(text) {
  document.getElementById("announcer").textContent = text;
}
