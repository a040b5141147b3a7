// The connectors page of the Python platform: connect opens the provider in a new tab, in the
// click itself; disconnect asks the server, then says "revoked".
(function () {
  "use strict";
  var org = document.body.getAttribute("data-org");
  document.querySelectorAll("[data-url]").forEach(function (button) {
    button.addEventListener("click", function () { window.open(button.getAttribute("data-url")); });
  });
  document.querySelectorAll("[data-connector]").forEach(function (button) {
    button.addEventListener("click", function () {
      var name = button.getAttribute("data-connector");
      fetch("/api/orgs/" + encodeURIComponent(org) + "/connectors/" + name + "/disconnect", {
        method: "POST", credentials: "same-origin", headers: { accept: "application/json" }
      }).then(function (response) { return response.json(); }).then(function () {
        document.querySelector("[data-testid=connector-status-" + name + "]").textContent = "revoked";
      });
    });
  });
  document.body.setAttribute("data-ready", "true");
})();
