// The chat of the Python platform: messages, and a connect card per queued message that
// listens on the three channels, polls the status API, and asks the server to re-send once
// the connection is connected. A channel message is only a hint: the status decides.
(function () {
  "use strict";
  var body = document.body;
  var org = body.getAttribute("data-org");
  var chat = body.getAttribute("data-chat");
  var api = "/api/orgs/" + encodeURIComponent(org);
  var chatApi = api + "/chats/" + encodeURIComponent(chat);
  var list = document.querySelector("[data-testid=chat-messages]");
  var form = document.querySelector("[data-testid=chat-form]");
  var input = document.querySelector("[data-testid=chat-input]");
  var cards = [];
  var shown = {};

  function request(method, url, payload) {
    var init = { method: method, credentials: "same-origin", headers: { accept: "application/json" } };
    if (payload !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return fetch(url, init).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return data;
      });
    });
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function render(message) {
    if (shown[message.id]) { return; }
    shown[message.id] = true;
    var item = element("li", { "data-testid": "chat-message", "data-role": message.role });
    if (message.kind === "answer") {
      item.appendChild(element("p", { "data-testid": "agent-answer" }, message.text));
    } else if (message.kind === "tool-error") {
      item.appendChild(element("p", { "data-testid": "tool-error" }, message.text));
    } else if (message.kind === "connect-card" || message.kind === "reconnect-card") {
      var card = renderCard(message);
      if (message.kind === "reconnect-card") {
        var prompt = element("div", { "data-testid": "reconnect-prompt" });
        prompt.appendChild(card);
        card = prompt;
      }
      item.appendChild(card);
    } else {
      item.appendChild(element("p", {}, message.text));
    }
    list.appendChild(item);
  }

  function renderCard(message) {
    var section = element("section", { "data-testid": "connect-card", "data-connection-id": message.connectionId });
    section.appendChild(element("p", {}, message.text));
    var error = element("p", { "data-testid": "connect-card-error", role: "alert" });
    error.hidden = true;
    var button = element("button", { type: "button", "data-testid": "connect-card-button" }, "Connect " + message.connector);
    section.appendChild(error);
    section.appendChild(button);
    if (!message.waiting) {
      button.hidden = true;
      return section;
    }
    var card = { message: message, error: error, button: button, phase: "waiting", timer: null };
    cards.push(card);
    button.addEventListener("click", function () {
      // In the click itself: a popup blocker lets a new tab open only here.
      window.open(message.connectUrl);
      card.error.hidden = true;
      card.phase = "waiting";
      check(card, 700);
    });
    check(card, 0);
    return section;
  }

  function check(card, afterMs) {
    clearTimeout(card.timer);
    if (card.phase === "resending" || card.phase === "done") { return; }
    card.timer = setTimeout(function () { ask(card); }, afterMs);
  }

  function ask(card) {
    request("GET", api + "/connections/" + encodeURIComponent(card.message.connectionId)).then(function (status) {
      if (card.phase === "resending" || card.phase === "done") { return; }
      if (status.status === "connected") { resend(card); return; }
      if (status.status === "failed" || status.status === "revoked") {
        card.phase = "failed";
        card.error.textContent = status.message || "The connection did not complete.";
        card.error.hidden = false;
        card.button.textContent = "Try again";
        return;
      }
      check(card, 900);
    }, function () { check(card, 1500); });
  }

  function resend(card) {
    card.phase = "resending";
    request("POST", chatApi + "/queued/" + encodeURIComponent(card.message.queuedId) + "/resend", {}).then(function (answer) {
      card.phase = "done";
      card.button.hidden = true;
      answer.messages.forEach(render);
    }, function () {
      card.phase = "waiting";
      check(card, 1500);
    });
  }

  // Any well-formed result from this origin, on any channel, makes every card ask now.
  function hint(data, origin) {
    if (origin !== location.origin) { return; }
    var payload = data;
    if (typeof payload === "string") {
      try { payload = JSON.parse(payload); } catch (e) { return; }
    }
    if (!payload || typeof payload !== "object" || (payload.result !== "success" && payload.result !== "error")) { return; }
    cards.forEach(function (card) {
      if (card.phase === "waiting" || card.phase === "failed") { check(card, 0); }
    });
  }
  try {
    var channel = new BroadcastChannel("alumia-connector-oauth");
    channel.onmessage = function (event) { hint(event.data, location.origin); };
  } catch (e) { /* polling and the other channels remain */ }
  window.addEventListener("storage", function (event) {
    if (event.key === "alumia:connector-oauth" && event.newValue) { hint(event.newValue, location.origin); }
  });
  window.addEventListener("message", function (event) { hint(event.data, event.origin); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    request("POST", chatApi + "/messages", { text: text }).then(function (answer) {
      answer.messages.forEach(render);
    });
  });

  request("GET", chatApi + "/messages").then(function (answer) {
    answer.messages.forEach(render);
    body.setAttribute("data-ready", "true");
  });
})();
