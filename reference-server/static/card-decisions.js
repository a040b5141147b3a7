// The chat card's decisions, as a pure module: events in, commands out.
//
// No DOM, no timers, no fetch: `chat.js` wires it to the page, and a simulator can run
// this very file in an embedded JavaScript engine. Loading it defines
// `globalThis.AlumiaCardDecisions` with `initial(options)` and `decide(state, event)`.
//
// Events:
//   {type: "start"}                                   the card appeared (page load or new card)
//   {type: "user", action: "connect" | "retry"}       the user clicked the card's button
//   {type: "channel", channel, origin, data}          a message on BroadcastChannel,
//                                                     the storage event or postMessage
//   {type: "poll-answer", status, message}            GET connection status answered
//   {type: "poll-failed"}                             GET connection status failed
//   {type: "timer", name: "poll"}                     the poll timer fired
//   {type: "resend-answer", ok, resent}               the re-send request answered
// Commands:
//   {type: "open", url}                               window.open(url) in the click itself
//   {type: "poll", afterMs}                           (re)schedule the one status poll
//   {type: "fetch-status"}                            ask the server for the status now
//   {type: "resend"}                                  re-send the queued message
//   {type: "show", view, message?}                    idle | waiting | connected | error | resumed
//   {type: "reload-messages"}                         the server has newer messages
//   {type: "ignored", reason}                         an event was dropped (for traces)
(function (root) {
  "use strict";

  var POLL_FIRST_MS = 500;
  var POLL_MAX_MS = 3000;
  var POLL_FACTOR = 1.5;
  var ALLOWED_KEYS = { result: true, connectionId: true, message: true };

  function initial(options) {
    return {
      phase: "idle",            // idle | waiting | failed | resending | done
      connectionId: options.connectionId,
      startUrl: options.startUrl,
      origin: options.origin,
      pollDelayMs: POLL_FIRST_MS,
      deliveries: 0
    };
  }

  function copy(state, changes) {
    var next = {};
    var key;
    for (key in state) { next[key] = state[key]; }
    for (key in changes) { next[key] = changes[key]; }
    return next;
  }

  // A result payload carries result, connectionId and an optional message: nothing else.
  function parsePayload(data) {
    var value = data;
    if (typeof value === "string") {
      if (value.length > 2048) { return null; }
      try { value = JSON.parse(value); } catch (e) { return null; }
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) { return null; }
    for (var key in value) {
      if (!Object.prototype.hasOwnProperty.call(ALLOWED_KEYS, key)) { return null; }
    }
    if (value.result !== "success" && value.result !== "error") { return null; }
    if (typeof value.connectionId !== "string" || value.connectionId.length > 128) { return null; }
    if (value.message !== undefined && (typeof value.message !== "string" || value.message.length > 1024)) {
      return null;
    }
    return value;
  }

  function settled(state) {
    return state.phase === "resending" || state.phase === "done";
  }

  function nextPoll(state) {
    var delay = Math.min(Math.round(state.pollDelayMs * POLL_FACTOR), POLL_MAX_MS);
    return { state: copy(state, { pollDelayMs: delay }), commands: [{ type: "poll", afterMs: state.pollDelayMs }] };
  }

  function decide(state, event) {
    switch (event.type) {
      case "start":
        return { state: state, commands: [{ type: "show", view: "idle" }, { type: "fetch-status" }] };

      case "user":
        if (settled(state)) { return { state: state, commands: [{ type: "ignored", reason: "already resumed" }] }; }
        return {
          state: copy(state, { phase: "waiting", pollDelayMs: POLL_FIRST_MS }),
          commands: [
            { type: "open", url: state.startUrl },
            { type: "show", view: "waiting" },
            { type: "poll", afterMs: POLL_FIRST_MS }
          ]
        };

      case "channel": {
        if (settled(state)) { return { state: state, commands: [{ type: "ignored", reason: "already resumed" }] }; }
        if (event.origin !== state.origin) {
          return { state: state, commands: [{ type: "ignored", reason: "foreign origin" }] };
        }
        var payload = parsePayload(event.data);
        if (payload === null) { return { state: state, commands: [{ type: "ignored", reason: "not a result payload" }] }; }
        if (payload.connectionId !== state.connectionId) {
          return { state: state, commands: [{ type: "ignored", reason: "another connection" }] };
        }
        // A message is a hint: the server's status decides.
        return {
          state: copy(state, { deliveries: state.deliveries + 1 }),
          commands: [{ type: "fetch-status" }]
        };
      }

      case "timer":
        if (settled(state)) { return { state: state, commands: [] }; }
        return { state: state, commands: [{ type: "fetch-status" }] };

      case "poll-answer":
        if (settled(state)) { return { state: state, commands: [] }; }
        if (event.status === "connected") {
          return {
            state: copy(state, { phase: "resending" }),
            commands: [{ type: "show", view: "connected" }, { type: "resend" }]
          };
        }
        if (event.status === "failed") {
          var failed = nextPoll(copy(state, { phase: "failed", pollDelayMs: POLL_MAX_MS }));
          failed.commands.unshift({ type: "show", view: "error", message: event.message || "The connection failed." });
          return failed;
        }
        if (event.status === "revoked") {
          return {
            state: copy(state, { phase: "failed" }),
            commands: [{ type: "show", view: "error", message: event.message || "This connection was removed." }]
          };
        }
        return nextPoll(state);

      case "poll-failed":
        if (settled(state)) { return { state: state, commands: [] }; }
        return nextPoll(state);

      case "resend-answer":
        if (state.phase !== "resending") { return { state: state, commands: [] }; }
        if (event.ok) {
          return {
            state: copy(state, { phase: "done" }),
            commands: event.resent ? [{ type: "show", view: "resumed" }] : [{ type: "show", view: "resumed" }, { type: "reload-messages" }]
          };
        }
        return {
          state: copy(state, { phase: "failed" }),
          commands: [{ type: "show", view: "error", message: "Could not re-send the message." }]
        };

      default:
        return { state: state, commands: [{ type: "ignored", reason: "unknown event" }] };
    }
  }

  root.AlumiaCardDecisions = {
    initial: initial,
    decide: decide,
    parsePayload: parsePayload,
    POLL_FIRST_MS: POLL_FIRST_MS,
    POLL_MAX_MS: POLL_MAX_MS
  };
})(typeof globalThis !== "undefined" ? globalThis : this);
