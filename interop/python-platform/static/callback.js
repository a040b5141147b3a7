// The callback page of the Python platform: the result, as JSON text, on BroadcastChannel,
// in localStorage (removed first, so that the same result written again is a change) and to
// the opener at this origin; each on its own; then the page closes at once.
(function () {
  "use strict";
  var query = new URLSearchParams(location.search);
  var payload = { result: query.get("oauth_result") === "success" ? "success" : "error", connectionId: query.get("connection_id") };
  if (query.get("oauth_message")) { payload.message = query.get("oauth_message"); }
  var text = JSON.stringify(payload);
  try { var channel = new BroadcastChannel("alumia-connector-oauth"); channel.postMessage(text); channel.close(); } catch (e) { /* none */ }
  try { localStorage.removeItem("alumia:connector-oauth"); localStorage.setItem("alumia:connector-oauth", text); } catch (e) { /* none */ }
  try { if (window.opener) { window.opener.postMessage(text, location.origin); } } catch (e) { /* none */ }
  document.body.setAttribute("data-ready", "true");
  window.close();
  setTimeout(function () { document.querySelector("[data-testid=callback-close-hint]").hidden = false; }, 250);
})();
