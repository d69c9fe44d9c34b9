// RDN's own small script: CSRF header for htmx, live events, confirmations, copy buttons.
// Everything works without it; it only makes pages livelier. No inline script anywhere (CSP).
(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');

  document.addEventListener("htmx:configRequest", function (event) {
    if (token) { event.detail.headers["X-CSRF-Token"] = token.getAttribute("content"); }
  });

  // Confirm destructive actions: <button data-confirm="...">
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
  });

  // Copy buttons: <button data-copy="text">
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      announce(button.textContent.trim() + " ✓");
    });
  });

  // A live search or a refreshed list says what it now shows (to screen readers, via the live region).
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.requestConfig && /^rdn:/.test(event.detail.requestConfig.triggeringEvent &&
        event.detail.requestConfig.triggeringEvent.type || "")) { return; }
    var found = document.querySelector("#results [data-announce]");
    if (found) { announce(found.textContent.trim()); }
  });

  // A list refreshed because of a background event is not swapped while the keyboard is inside it (the
  // focus would be lost); it catches up at the next event or on the next visit.
  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail.triggeringEvent;
    var target = event.detail.target;
    if (trigger && /^rdn:/.test(trigger.type) && target && target.contains(document.activeElement) &&
        document.activeElement !== document.body) {
      event.preventDefault();
    }
  });

  function announce(text) {
    var region = document.getElementById("live-region");
    if (region) { region.textContent = ""; window.setTimeout(function () { region.textContent = text; }, 50); }
  }
  window.rdnAnnounce = announce;

  // Live events: Server-Sent Events become DOM events "rdn:<type>" on <body>, which htmx elements listen to
  // (hx-trigger="rdn:org.created from:body"). The event types to relay are read from the page itself.
  function listenedTypes() {
    var types = {}, re = /rdn:([a-z_.]+)/g, m;
    document.querySelectorAll("[hx-trigger]").forEach(function (el) {
      var spec = el.getAttribute("hx-trigger");
      while ((m = re.exec(spec)) !== null) { types[m[1]] = true; }
    });
    ["session.revoked", "page.created", "page.acknowledged"].forEach(function (t) { types[t] = true; });
    return Object.keys(types);
  }

  function announcementsFor(type) {
    var holder = document.querySelector("[data-announcements]");
    if (!holder) { return null; }
    try { return JSON.parse(holder.getAttribute("data-announcements"))[type] || null; } catch (e) { return null; }
  }

  function relay(event) {
    var data = {};
    try { data = JSON.parse(event.data); } catch (e) { /* keep empty */ }
    document.body.dispatchEvent(new CustomEvent("rdn:" + event.type, { detail: data, bubbles: true }));
    if (event.type === "session.revoked") { window.location.assign("/login"); }
    var text = announcementsFor(event.type);
    if (text) { announce(text); }
  }

  function open(url) {
    var source = new EventSource(url);
    listenedTypes().forEach(function (type) { source.addEventListener(type, relay); });
    return source;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var focus = document.querySelector("[data-autofocus]");
    if (focus) { focus.focus(); }
    if (!window.EventSource) { return; }
    var url = document.body.getAttribute("data-events");
    if (url) { window.rdnEvents = open(url); }
    var room = document.querySelector("[data-room-events]");
    if (room) { window.rdnRoomEvents = open(room.getAttribute("data-room-events")); }
  });

  // After a message is sent (htmx swaps in a fresh form), the keyboard goes back to the message box.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "room-compose") {
      var box = document.querySelector("#room-compose textarea");
      if (box) { box.focus(); }
    }
  });
})();
