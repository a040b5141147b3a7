// The chat page: renders messages, sends them, and wires each connect card's decisions
// (card-decisions.js) to the page: channels in, window.open / polling / re-send out.
(function () {
  "use strict";
  var Decisions = window.AlumiaCardDecisions;
  var CHANNEL_NAME = "alumia-connector-oauth";
  var STORAGE_KEY = "alumia:connector-oauth";
  var body = document.body;
  var org = body.getAttribute("data-org");
  var chat = body.getAttribute("data-chat");
  var apiBase = "/api/orgs/" + encodeURIComponent(org);
  var chatApi = apiBase + "/chats/" + encodeURIComponent(chat);
  var list = document.querySelector("[data-testid=chat-messages]");
  var form = document.querySelector("[data-testid=chat-form]");
  var input = document.querySelector("[data-testid=chat-input]");
  var cards = {};          // queuedId -> controller
  var rendered = {};       // message id -> true

  function jsonRequest(method, url, payload) {
    var options = { method: method, credentials: "same-origin", headers: { "accept": "application/json" } };
    if (payload !== undefined) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    return fetch(url, options).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data && data.error ? data.error : "HTTP " + response.status); }
        return data;
      });
    });
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    for (var name in attributes) { node.setAttribute(name, attributes[name]); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function renderMessage(message) {
    if (rendered[message.id]) { return; }
    rendered[message.id] = true;
    var item = element("li", {
      "data-testid": "chat-message",
      "data-role": message.role,
      "data-kind": message.kind,
      "data-message-id": String(message.id)
    });
    if (message.kind === "answer") {
      item.appendChild(element("p", { "data-testid": "agent-answer" }, message.text));
    } else if (message.kind === "tool-error") {
      item.appendChild(element("p", { "data-testid": "tool-error" }, message.text));
    } else if (message.kind === "connect-card" || message.kind === "reconnect-card") {
      item.appendChild(renderCard(message));
    } else {
      item.appendChild(element("p", { "data-testid": message.role === "user" ? "user-text" : "agent-text" }, message.text));
    }
    list.appendChild(item);
  }

  function renderCard(message) {
    var card = element("section", {
      "data-testid": "connect-card",
      "data-connector": message.connector,
      "data-connection-id": message.connectionId,
      "data-queued-id": message.queuedId
    });
    if (message.kind === "reconnect-card") { card.setAttribute("data-reconnect", "true"); }
    var wrapper = card;
    if (message.kind === "reconnect-card") {
      wrapper = element("div", { "data-testid": "reconnect-prompt" });
      wrapper.appendChild(card);
    }
    card.appendChild(element("p", { "data-testid": "connect-card-text" }, message.text));
    var status = element("p", { "data-testid": "connect-card-status", "role": "status" });
    var error = element("p", { "data-testid": "connect-card-error", "hidden": "" });
    var button = element("button", { "type": "button", "data-testid": "connect-card-button" }, "Connect");
    card.appendChild(status);
    card.appendChild(error);
    card.appendChild(button);
    if (message.queuedState !== "waiting") {
      status.textContent = "Resumed.";
      card.setAttribute("data-phase", "done");
      button.hidden = true;
      return wrapper;
    }
    var controller = {
      state: Decisions.initial({ connectionId: message.connectionId, startUrl: message.startUrl, origin: location.origin }),
      timer: null,
      card: card, status: status, error: error, button: button, queuedId: message.queuedId,
      connectionId: message.connectionId
    };
    cards[message.queuedId] = controller;
    button.addEventListener("click", function () {
      // No await between the click and window.open: popup blockers count on it.
      dispatch(controller, { type: "user", action: controller.state.phase === "failed" ? "retry" : "connect" });
    });
    setTimeout(function () { dispatch(controller, { type: "start" }); }, 0);
    return wrapper;
  }

  function show(controller, view, message) {
    controller.card.setAttribute("data-phase", view);
    var texts = {
      idle: "Waiting for you to connect.",
      waiting: "Waiting for the sign-in to finish…",
      connected: "Connected. Re-sending your message…",
      resumed: "Resumed.",
      error: "The connection did not complete."
    };
    controller.status.textContent = texts[view] || view;
    controller.error.hidden = view !== "error";
    controller.error.textContent = view === "error" ? (message || "") : "";
    controller.button.hidden = view === "connected" || view === "resumed";
    controller.button.textContent = view === "error" ? "Try again" : (view === "waiting" ? "Open the sign-in again" : "Connect");
  }

  function dispatch(controller, event) {
    var outcome = Decisions.decide(controller.state, event);
    controller.state = outcome.state;
    outcome.commands.forEach(function (command) { run(controller, command); });
  }

  function run(controller, command) {
    switch (command.type) {
      case "open":
        window.open(command.url, "_blank");
        break;
      case "show":
        show(controller, command.view, command.message);
        break;
      case "poll":
        clearTimeout(controller.timer);
        controller.timer = setTimeout(function () { dispatch(controller, { type: "timer", name: "poll" }); }, command.afterMs);
        break;
      case "fetch-status":
        clearTimeout(controller.timer);
        jsonRequest("GET", apiBase + "/connections/" + encodeURIComponent(controller.connectionId)).then(function (status) {
          dispatch(controller, { type: "poll-answer", status: status.status, message: status.message });
        }, function () {
          dispatch(controller, { type: "poll-failed" });
        });
        break;
      case "resend":
        jsonRequest("POST", chatApi + "/queued/" + encodeURIComponent(controller.queuedId) + "/resend", {}).then(function (answer) {
          answer.messages.forEach(renderMessage);
          dispatch(controller, { type: "resend-answer", ok: true, resent: answer.resent });
        }, function () {
          dispatch(controller, { type: "resend-answer", ok: false });
        });
        break;
      case "reload-messages":
        loadMessages();
        break;
      default:
        break;
    }
  }

  function deliver(channel, origin, data) {
    Object.keys(cards).forEach(function (queuedId) {
      dispatch(cards[queuedId], { type: "channel", channel: channel, origin: origin, data: data });
    });
  }

  // The three channels, each guarded: one missing or throwing does not stop the others.
  try {
    var broadcast = new BroadcastChannel(CHANNEL_NAME);
    broadcast.onmessage = function (event) { deliver("broadcast", event.origin || location.origin, event.data); };
  } catch (e) { /* no BroadcastChannel here: storage, opener and polling remain */ }
  window.addEventListener("storage", function (event) {
    if (event.key !== STORAGE_KEY || event.newValue === null) { return; }
    var origin = location.origin;
    try { origin = new URL(event.url).origin; } catch (e) { /* keep the page origin */ }
    deliver("storage", origin, event.newValue);
  });
  window.addEventListener("message", function (event) {
    deliver("opener", event.origin, event.data);
  });

  function loadMessages() {
    return jsonRequest("GET", chatApi + "/messages").then(function (answer) {
      answer.messages.forEach(renderMessage);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    jsonRequest("POST", chatApi + "/messages", { text: text }).then(function (answer) {
      answer.messages.forEach(renderMessage);
    });
  });

  loadMessages().then(function () { body.setAttribute("data-ready", "true"); });
})();
