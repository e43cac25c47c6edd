// An error as the reader sees it: what the API said, and a way to enter a key when the
// answer was that one is missing or lacks the role.

import { ApiError } from "./api.js";
import { h } from "./dom.js";
import { askForKey } from "./key_dialog.js";

export function errorBox(error) {
  const message = error instanceof Error ? error.message : String(error);
  const box = h("div", { class: "error", role: "alert" }, h("p", null, message));
  if (error instanceof ApiError && error.needsKey) {
    box.append(h("button", { type: "button", onclick: () => askForKey(message) }, "Enter an API key"));
  }
  return box;
}
