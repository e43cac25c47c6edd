// Moving between views: every view is a URL fragment, so going to the one already shown
// (Refresh, Clear, Apply with the same filters) must re-render it by hand.

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
