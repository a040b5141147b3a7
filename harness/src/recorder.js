// The harness's recorder, installed as a WebDriver BiDi preload script: it runs in every
// document of every tab (the window.open tab included) before any page script.
//
// It keeps the originals of what it watches, applies the scenario's browser configuration
// (features removed, storage throwing, openers severed), and reports on the console, with a
// marker the harness reads back through `log.entryAdded`:
//   document       a document started (its URL, whether it has an opener)
//   window-open    window.open was called (URL, target, features)
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
  const emit = (event) => {
    try { log(MARKER + stringify(event)); } catch (e) { /* unserializable data */ }
  };
  const safe = (read) => { try { return read(); } catch (e) { return null; } };

  const OriginalBroadcastChannel = window.BroadcastChannel;
  const originalOpen = window.open;
  const originalSetItem = window.Storage ? window.Storage.prototype.setItem : null;
  const realLocalStorage = safe(() => window.localStorage);
  const realSessionStorage = safe(() => window.sessionStorage);

  emit({ e: "document", url: location.href, hasOpener: safe(() => window.opener !== null), name: safe(() => window.name) });

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
    emit({
      e: "window-open",
      url: url === undefined ? null : safe(() => new URL(String(url), location.href).href),
      target: target === undefined ? null : String(target),
      features: features === undefined ? null : String(features)
    });
    if (config.opener === "noopener") {
      return originalOpen.call(window, url, target, "noopener");
    }
    return originalOpen.apply(window, arguments);
  };

  // The browser configuration of the scenario.
  for (const feature of config.removeFeatures) {
    try { delete window[feature]; } catch (e) { /* not removable */ }
  }
  if (config.storage === "throws") {
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
  document.addEventListener("DOMContentLoaded", () => surfaces("loaded"));
  window.addEventListener("pagehide", () => surfaces("pagehide"));
  Object.defineProperty(window, config.surfacesHook, { value: () => surfaces("final"), enumerable: false });
}
