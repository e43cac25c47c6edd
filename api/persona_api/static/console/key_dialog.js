// The API key dialog: a key entered once is kept in this tab's session storage (api.js)
// and sent as a header; it never appears in a URL.

import { apiKey } from "./api.js";

const dialog = document.getElementById("key-dialog");
const form = document.getElementById("key-form");
const button = document.getElementById("key-button");
const changed = new Set();

export function askForKey(reason) {
  document.getElementById("key-reason").textContent =
    reason || "Reads or writes on this server may need an API key.";
  form.elements.key.value = "";
  dialog.showModal();
}

export function onKeyChange(callback) {
  changed.add(callback);
}

function showState() {
  button.textContent = apiKey.get() ? "API key ✓" : "API key";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const choice = event.submitter?.value;
  const entered = form.elements.key.value.trim();
  if (choice === "save" && entered) apiKey.set(entered);
  if (choice === "forget") apiKey.forget();
  form.elements.key.value = "";
  dialog.close();
  showState();
  if (choice !== "cancel") changed.forEach((callback) => callback());
});
button.addEventListener("click", () => askForKey());
showState();
