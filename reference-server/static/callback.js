// The connector callback page: tell the originating page the result on three independent
// channels, then close. Only {result, connectionId, message} ever leaves this page.
(function () {
  "use strict";
  var CHANNEL_NAME = "alumia-connector-oauth";
  var STORAGE_KEY = "alumia:connector-oauth";
  var params = new URLSearchParams(location.search);
  var payload = {
    result: params.get("oauth_result") === "success" ? "success" : "error",
    connectionId: params.get("connection_id") || ""
  };
  var message = params.get("oauth_message");
  if (message) { payload.message = message; }
  var delivered = [];

  try {
    var channel = new BroadcastChannel(CHANNEL_NAME);
    channel.postMessage(payload);
    channel.close();
    delivered.push("broadcast");
  } catch (e) { /* BroadcastChannel missing or blocked */ }

  try {
    // Remove first, so that writing the same result again still fires a storage event.
    window.localStorage.removeItem(STORAGE_KEY);
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify(payload));
    delivered.push("storage");
  } catch (e) { /* storage blocked or missing */ }

  try {
    if (window.opener && !window.opener.closed) {
      window.opener.postMessage(payload, location.origin);
      delivered.push("opener");
    }
  } catch (e) { /* opener gone or severed */ }

  document.body.setAttribute("data-delivered", delivered.join(" "));
  setTimeout(function () {
    window.close();
    // Still here: the browser did not let the page close itself.
    setTimeout(function () {
      var hint = document.querySelector("[data-testid=callback-close-hint]");
      if (hint) { hint.hidden = false; }
    }, 300);
  }, 100);
})();
