// The harness's recorder, installed as a WebDriver BiDi preload script (or, in engines without
// BiDi, served by the recording proxy as the first script of every document): it runs in every
// document of every tab (the window.open tab included) before any page script.
//
// It keeps the originals of what it watches, applies the scenario's browser configuration
// (features removed, storage throwing or full, openers severed), and reports on the console, with a
// marker the harness reads back through `log.entryAdded`:
//   document       a document started (its URL, whether it has an opener); said again once
//                  it is parsed, and before any other report of a document that reuses the
//                  window of the tab's initial about:blank
//   close-called   the page called window.close()
//   window-open    window.open was called (URL, target, features, whether the browser
//                  blocked it, and the event being handled at the call: its type and
//                  isTrusted, and navigator.userActivation.isActive)
//   http           a fetch or XMLHttpRequest of the page answered (method, URL, status,
//                  request and response bodies): what the page received, read or not
//   bc-send        a BroadcastChannel message was posted on the platform's channel
//   bc-receive     the harness's own BroadcastChannel listener got a message
//   storage-write  Storage.setItem was called
//   storage-event  the harness's own storage listener got an event
//   post-message   postMessage was called on this window (by a same-origin script), with
//                  its target origin
//   message        the harness's own message listener got a postMessage
//   surfaces       what script can see: HTML, cookies, local and session storage, window.name
(config) => {
  "use strict";
  const MARKER = config.marker;
  const log = console.debug.bind(console);
  const stringify = JSON.stringify.bind(JSON);
  const safe = (read) => { try { return read(); } catch (e) { return null; } };
  // Where reports go: the console (read back over BiDi), or, where the engine has no BiDi,
  // beacons to the recording proxy on this document's own origin.
  const newDocId = () => Math.random().toString(36).slice(2) + Date.now().toString(36);
  let DOC = newDocId();
  let sequence = 0;
  const beacon = navigator.sendBeacon ? navigator.sendBeacon.bind(navigator) : null;
  // The page's fetch is watched below; the recorder's own reports use the original.
  const rawFetch = window.fetch ? window.fetch.bind(window) : null;
  const send = config.transport === "beacon"
    ? (event) => {
      event.doc = DOC;
      try {
        const body = stringify({ doc: DOC, seq: sequence++, at: Date.now(), event: event });
        // Beacons and keepalive fetches share one quota of 64 KiB in flight per document: a
        // few large payloads in a row (a forged 20 000-character message seen on four
        // channels) exceed it under load, and a refused beacon goes as a plain fetch.
        if ((!beacon || !beacon(config.reportUrl, body)) && rawFetch) {
          rawFetch(config.reportUrl, { method: "POST", body: body }).catch(() => {});
        }
      } catch (e) { /* unserializable data */ }
    }
    : (event) => {
      event.doc = DOC;
      try { log(MARKER + stringify(event)); } catch (e) { /* unserializable data */ }
    };
  // Every report first makes sure its document was announced. A tab's first navigation to a
  // page of its initial about:blank's origin (a callback the provider redirected to at once,
  // from a tab the platform opened) keeps that window, and with it this script, which does not
  // run again: the new document is seen here as a document that is not the one announced, and
  // gets an id and an announcement of its own before anything it does is reported, however
  // soon it closes itself.
  let announcedDocument = null;
  let announce = () => {};
  const ensureAnnounced = () => {
    if (announcedDocument !== document) {
      if (announcedDocument !== null) { DOC = newDocId(); }
      announcedDocument = document;
      announce();
    }
  };
  const emit = (event) => {
    ensureAnnounced();
    send(event);
  };
  if (config.transport === "beacon") {
    Object.defineProperty(window, config.docHook, { get: () => DOC, enumerable: false, configurable: true });
    // Without BiDi the console is not readable from outside: report what is written to it.
    for (const level of ["log", "info", "warn", "error", "debug"]) {
      const original = console[level].bind(console);
      console[level] = function () {
        emit({ e: "console", level: level, text: Array.from(arguments).map(String).join(" ") });
        return original.apply(console, arguments);
      };
    }
  }

  const OriginalBroadcastChannel = window.BroadcastChannel;
  const originalOpen = window.open;
  const originalSetItem = window.Storage ? window.Storage.prototype.setItem : null;
  const realLocalStorage = safe(() => window.localStorage);
  const realSessionStorage = safe(() => window.sessionStorage);

  // Said again once the document is parsed: a new tab's very first console entries can be
  // lost while the driver attaches to it. The harness keeps one per document.
  // A document in a frame whose top-level page is of another origin is in another storage
  // partition than the platform's own tabs (storage and BroadcastChannel are keyed by
  // top-level site): said only when so.
  const thirdParty = (() => {
    if (window.top === window) return false;
    try { void window.top.location.href; return false; } catch (e) { return true; }
  })();
  announce = () => send(Object.assign(
    { e: "document", url: location.href, hasOpener: safe(() => window.opener !== null), name: safe(() => window.name) },
    thirdParty ? { thirdParty: true } : {}));
  ensureAnnounced();

  if (OriginalBroadcastChannel) {
    try {
      const listener = new OriginalBroadcastChannel(config.channelName);
      listener.onmessage = (event) => emit({ e: "bc-receive", origin: event.origin, data: event.data });
    } catch (error) {
      emit({ e: "bc-unavailable", error: String(error) });
    }
    const originalPost = OriginalBroadcastChannel.prototype.postMessage;
    OriginalBroadcastChannel.prototype.postMessage = function (data) {
      if (this.name === config.channelName) { emit({ e: "bc-send", data: data }); }
      return originalPost.apply(this, arguments);
    };
  }
  window.addEventListener("storage", (event) => {
    emit({ e: "storage-event", key: event.key, newValue: event.newValue, url: event.url });
  }, true);
  window.addEventListener("message", (event) => {
    emit({ e: "message", origin: event.origin, data: event.data });
  }, true);
  if (originalSetItem) {
    window.Storage.prototype.setItem = function (key, value) {
      if (config.storage === "full") {
        throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
      }
      emit({ e: "storage-write", key: String(key), value: String(value) });
      return originalSetItem.apply(this, arguments);
    };
  }
  const originalPostMessage = window.postMessage;
  window.postMessage = function (data, targetOrigin) {
    const target = typeof targetOrigin === "string" ? targetOrigin
      : (targetOrigin && typeof targetOrigin === "object" ? String(targetOrigin.targetOrigin || "/") : null);
    emit({ e: "post-message", targetOrigin: target, data: data });
    return originalPostMessage.apply(this, arguments);
  };
  window.open = function (url, target, features) {
    // The event being dispatched right now, if any: a trusted click or key press means the
    // call runs inside the user's gesture (not after an await, a timer or a promise).
    const event = safe(() => window.event);
    const call = {
      e: "window-open",
      url: url === undefined ? null : safe(() => new URL(String(url), location.href).href),
      target: target === undefined ? null : String(target),
      features: features === undefined ? null : String(features),
      gesture: event ? { type: String(event.type), trusted: event.isTrusted === true } : null,
      activation: safe(() => navigator.userActivation ? navigator.userActivation.isActive : null)
    };
    let opened;
    try {
      opened = config.opener === "noopener"
        ? originalOpen.call(window, url, target, "noopener")
        : originalOpen.apply(window, arguments);
    } finally {
      // A null window without noopener: the browser blocked the popup.
      call.blocked = opened === null && config.opener !== "noopener";
      emit(call);
    }
    return opened;
  };

  // What the page's own requests carry back and forth, read by its scripts or not.
  const LONGEST_BODY = 262144;
  const text = (value) => typeof value === "string" ? value.slice(0, LONGEST_BODY) : null;
  if (rawFetch) {
    window.fetch = function (input, init) {
      // Read without touching the request (a Request's body can be read once only).
      const url = safe(() => new URL(typeof input === "object" && input !== null && "url" in input
        ? input.url : String(input), location.href).href);
      const method = safe(() => String((init && init.method)
        || (typeof input === "object" && input !== null && input.method) || "GET").toUpperCase());
      const promise = rawFetch.apply(window, arguments);
      promise.then((response) => {
        response.clone().text().then((body) => emit({
          e: "http", via: "fetch", method: method, url: url, status: response.status,
          requestBody: text(init && init.body), responseBody: text(body)
        }), () => {});
      }, () => {});
      return promise;
    };
  }
  if (window.XMLHttpRequest) {
    const originalOpenXhr = XMLHttpRequest.prototype.open;
    const originalSend = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.open = function (method, url) {
      this.__alumiaCall = { method: String(method), url: safe(() => new URL(String(url), location.href).href) };
      return originalOpenXhr.apply(this, arguments);
    };
    XMLHttpRequest.prototype.send = function (body) {
      const call = this.__alumiaCall || {};
      this.addEventListener("loadend", () => emit({
        e: "http", via: "xhr", method: call.method, url: call.url, status: this.status,
        requestBody: text(body), responseBody: safe(() => text(this.responseText))
      }));
      return originalSend.apply(this, arguments);
    };
  }

  // The browser configuration of the scenario.
  for (const feature of config.removeFeatures) {
    try { delete window[feature]; } catch (e) { /* not removable */ }
  }
  if (config.storage === "throws" || (config.storage === "throws-in-third-party-frames" && thirdParty)) {
    for (const name of ["localStorage", "sessionStorage"]) {
      Object.defineProperty(window, name, {
        configurable: true,
        get() { throw new DOMException("The operation is insecure.", "SecurityError"); }
      });
    }
  }

  const dump = (area) => {
    if (!area) { return null; }
    return safe(() => {
      const copy = {};
      for (let i = 0; i < area.length; i += 1) { copy[area.key(i)] = area.getItem(area.key(i)); }
      return copy;
    });
  };
  const surfaces = (reason) => emit({
    e: "surfaces",
    reason: reason,
    url: location.href,
    html: safe(() => document.documentElement.outerHTML),
    text: safe(() => document.body ? document.body.innerText : ""),
    cookie: safe(() => document.cookie),
    local: dump(realLocalStorage),
    session: dump(realSessionStorage),
    name: safe(() => window.name)
  });
  // On the window, not the document: when a new tab's first navigation reuses the window of
  // its initial about:blank (Chromium), the document seen here is not the one that loads.
  window.addEventListener("DOMContentLoaded", () => {
    if (announcedDocument === document) { announce(); } else { ensureAnnounced(); }
    surfaces("loaded");
  });
  // A page that closes itself: said before it goes, so that a callback gone in an instant is
  // still known by its URL.
  const originalClose = window.close;
  window.close = function () {
    emit({ e: "close-called" });
    return originalClose.apply(this, arguments);
  };
  window.addEventListener("pagehide", () => surfaces("pagehide"));
  Object.defineProperty(window, config.surfacesHook, { value: () => surfaces("final"), enumerable: false });
}
