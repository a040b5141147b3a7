// The connectors page: connect opens the provider in a new tab (no features, no await before
// window.open); disconnect revokes at once; statuses refresh from the server.
(function () {
  "use strict";
  var org = document.body.getAttribute("data-org");
  var apiBase = "/api/orgs/" + encodeURIComponent(org);
  var timer = null;
  var pollsLeft = 0;

  function refresh() {
    fetch(apiBase + "/connectors", { credentials: "same-origin", headers: { "accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        var pending = false;
        answer.connectors.forEach(function (connector) {
          var name = connector.name;
          var status = document.querySelector("[data-testid=connector-status-" + name + "]");
          var connect = document.querySelector("[data-testid=connect-" + name + "]");
          var disconnect = document.querySelector("[data-testid=disconnect-" + name + "]");
          if (status) { status.textContent = connector.status; }
          if (connect) { connect.hidden = connector.status === "connected"; }
          if (disconnect) {
            // A pending sign-in can be cancelled too: its redirect is then refused.
            disconnect.hidden = connector.status !== "connected" && connector.status !== "pending";
            disconnect.setAttribute("data-connection-id", connector.connectionId || "");
          }
          if (connector.status === "pending") { pending = true; }
        });
        schedule(pending);
      }, function () { schedule(true); });
  }

  function schedule(keepGoing) {
    clearTimeout(timer);
    if (keepGoing && pollsLeft > 0) {
      pollsLeft -= 1;
      timer = setTimeout(refresh, 1000);
    }
  }

  document.querySelectorAll("[data-connect-url]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.open(button.getAttribute("data-connect-url"), "_blank");
      pollsLeft = 300;
      schedule(true);
    });
  });

  document.querySelectorAll("[data-disconnect]").forEach(function (button) {
    button.addEventListener("click", function () {
      var id = button.getAttribute("data-connection-id");
      button.disabled = true;
      fetch(apiBase + "/connections/" + encodeURIComponent(id) + "/disconnect", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "accept": "application/json" },
        body: "{}"
      }).then(function () {
        button.disabled = false;
        refresh();
      });
    });
  });

  function onResult() { pollsLeft = Math.max(pollsLeft, 5); refresh(); }
  try { new BroadcastChannel("alumia-connector-oauth").onmessage = onResult; } catch (e) { /* polling remains */ }
  window.addEventListener("storage", function (event) { if (event.key === "alumia:connector-oauth") { onResult(); } });
  window.addEventListener("message", function (event) { if (event.origin === location.origin) { onResult(); } });
  document.body.setAttribute("data-ready", "true");
})();
