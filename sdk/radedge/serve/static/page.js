// The console page: one card per image, newest first, kept current from the /events stream.
// Instance data is written with textContent and attributes only, never parsed as markup.
"use strict";

(() => {
  const MAX_CARDS = 200;
  const RETRY_AFTER_CLOSE_MS = 3000;
  const STATE_LABELS = {
    received: "received",
    analysing: "analysing…",
    done: "done",
    "not analysed": "not analysed",
    failed: "failed",
    refused: "refused",
  };
  const VIA_LABELS = { "c-store": "C-STORE", folder: "folder" };

  const token = new URLSearchParams(location.search).get("token");
  const cards = document.getElementById("cards");
  const empty = document.getElementById("empty");
  const connection = document.getElementById("connection");
  const enlarged = document.getElementById("enlarged");
  const enlargedImage = document.getElementById("enlarged-image");
  const byKey = new Map();

  // Every request carries the page's own ?token=, since the server asks for it on every route.
  function withToken(url) {
    if (token === null) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function twoDigits(number) {
    return String(number).padStart(2, "0");
  }

  // HH:MM:SS in the browser's local time, from epoch seconds.
  function clock(epochSeconds) {
    const date = new Date(epochSeconds * 1000);
    return `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())}`;
  }

  function setConnection(state) {
    connection.dataset.state = state;
    connection.textContent = state === "live" ? "live" : state === "connecting" ? "connecting…" : "reconnecting…";
  }

  function fillTerms(list, values) {
    const rows = [];
    for (const [name, value] of Object.entries(values || {})) {
      const row = element("div");
      row.append(element("dt", null, name), element("dd", null, value));
      rows.push(row);
    }
    list.replaceChildren(...rows);
  }

  function modelNames(models) {
    if (Array.isArray(models)) return models.map((model) => (typeof model === "string" ? model : model && model.name)).filter(Boolean);
    if (models && typeof models === "object") return Object.keys(models);
    return [];
  }

  function showService(service) {
    service = service || {};
    document.getElementById("service-name").textContent = service.name || "radedge";
    const details = [];
    if (service.ae_title) details.push(`AE ${service.ae_title}`);
    const models = modelNames(service.models);
    if (models.length) details.push(`models: ${models.join(", ")}`);
    if (service.version) details.push(`v${service.version}`);
    if (typeof service.started_at === "number") details.push(`running since ${new Date(service.started_at * 1000).toLocaleString()}`);
    document.getElementById("service-details").textContent = details.join(" · ");
  }

  function showCounts(counts, outbox) {
    fillTerms(document.getElementById("counts"), counts);
    const outboxList = document.getElementById("outbox");
    fillTerms(outboxList, outbox);
    outboxList.hidden = !outbox || Object.keys(outbox).length === 0;
  }

  function flagBadge(flag) {
    const badge = element("span", "flag");
    badge.dataset.code = flag.code || "";
    badge.title = [flag.model, flag.label, typeof flag.threshold === "number" ? `threshold ${flag.threshold}` : null]
      .filter(Boolean).join(" · ");
    badge.append(element("span", "title", flag.title || flag.label || flag.code || "flag"));
    if (typeof flag.score === "number") badge.append(element("span", "score", flag.score.toFixed(2)));
    if (flag.where) badge.append(element("span", "where", flag.where));
    return badge;
  }

  function outcome(instance, flags) {
    const box = element("div", "outcome");
    if (flags.length) {
      const list = element("div", "flags");
      list.append(...flags.map(flagBadge));
      box.append(list);
    } else if (instance.state === "done") {
      box.append(element("p", "no-findings", "No findings"));
    }
    const models = Object.entries(instance.models || {});
    if (instance.state === "not analysed") {
      // Every model out of scope is the everyday case (another body part, another modality):
      // said in three words, each model's reason below.
      const outOfScope = models.length > 0 && models.every(([, what]) => String(what).startsWith("not applied"));
      const why = outOfScope ? "out of scope" : (instance.reason || "no model applies to this image");
      box.append(element("p", "not-analysed", `Not analysed: ${why}`));
    } else if (instance.state === "failed") {
      box.append(element("p", "problem", `Failed: ${instance.reason || "no reason given"}`));
    } else if (instance.state === "refused") {
      box.append(element("p", "problem", `Refused: ${instance.reason || "no reason given"}`));
    }
    if (models.length) {
      const list = element("ul", "models");
      list.append(...models.map(([name, state]) => element("li", null, `${name}: ${state}`)));
      box.append(list);
    }
    if (typeof instance.receive_to_flag_ms === "number") {
      const ms = instance.receive_to_flag_ms;
      const after = ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
      box.append(element("p", "timing", `result ${after} after receipt`));
    }
    return box;
  }

  function thumbnail(instance) {
    const button = element("button", "thumbnail");
    button.type = "button";
    button.title = "Enlarge the overlay";
    const image = element("img");
    image.src = withToken(`overlay/${encodeURIComponent(instance.key)}.png`);
    image.alt = "Overlay of the model's findings";
    image.loading = "lazy";
    button.append(image);
    button.addEventListener("click", () => {
      enlargedImage.src = image.src;
      enlargedImage.alt = image.alt;
      enlarged.showModal();
    });
    return button;
  }

  function card(instance) {
    const flags = Array.isArray(instance.flags) ? instance.flags : [];
    const node = element("article", "card");
    node.dataset.key = instance.key;
    node.dataset.state = instance.state || "";
    node.dataset.flagged = String(flags.length > 0);
    node.dataset.receivedAt = String(Number(instance.received_at) || 0);

    const head = element("header", "card-head");
    const received = element("time", "received", clock(Number(instance.received_at) || 0));
    received.dateTime = new Date((Number(instance.received_at) || 0) * 1000).toISOString();
    head.append(received);
    head.append(element("span", "via", VIA_LABELS[instance.via] || instance.via || ""));
    const exam = [instance.modality, instance.body_part, instance.view].filter(Boolean).join(" · ");
    head.append(element("span", "exam", exam || "image"));
    const state = element("span", "state", STATE_LABELS[instance.state] || instance.state || "");
    state.dataset.state = instance.state || "";
    head.append(state);

    node.append(head, outcome(instance, flags));
    if (instance.overlay) node.append(thumbnail(instance));
    return node;
  }

  // Insert or replace the instance's card, keeping newest first and at most MAX_CARDS. A card
  // whose instance has not changed is left alone, so its overlay is not loaded again.
  function place(instance) {
    if (!instance || typeof instance.key !== "string") return;
    const signature = JSON.stringify(instance);
    const previous = byKey.get(instance.key);
    if (previous && previous.signature === signature) return;
    if (previous) previous.node.remove();
    const node = card(instance);
    const receivedAt = Number(node.dataset.receivedAt);
    let before = null;
    for (const other of cards.children) {
      if (Number(other.dataset.receivedAt) < receivedAt) {
        before = other;
        break;
      }
    }
    cards.insertBefore(node, before);
    byKey.set(instance.key, { node, signature });
    while (cards.children.length > MAX_CARDS) {
      const oldest = cards.lastElementChild;
      byKey.delete(oldest.dataset.key);
      oldest.remove();
    }
    empty.hidden = cards.children.length > 0;
  }

  function showStatus(status) {
    showService(status.service);
    showCounts(status.counts, status.outbox);
    const instances = (status.instances || []).slice(0, MAX_CARDS);
    const current = new Set(instances.map((instance) => instance && instance.key));
    for (const [key, { node }] of byKey) {
      if (!current.has(key)) {
        node.remove();
        byKey.delete(key);
      }
    }
    for (const instance of instances) place(instance);
    empty.hidden = cards.children.length > 0;
  }

  function onEvent(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      console.warn("radedge: an event was not JSON:", error.message);
      return;
    }
    if (event.type === "snapshot") showStatus(event.status || {});
    else if (event.type === "instance") place(event.instance);
    else if (event.type === "status") showCounts(event.counts, event.outbox);
    else if (event.type === "resync") connect();
  }

  // Every connection starts with a snapshot of the whole status, and the events after it come in
  // order on the same stream. So a reconnect needs no separate fetch, and a resync (this page fell
  // behind and events were dropped) opens a new stream rather than fetching /api/status, whose
  // answer could arrive after, and undo, events that came in meanwhile. EventSource reconnects by
  // itself after a network error; it gives up only when the server answers with an error (a
  // restart mid-request, a changed token), and then the page starts over.
  let source = null;

  function connect() {
    if (source !== null) source.close();
    const current = new EventSource(withToken("events"));
    source = current;
    current.onopen = () => setConnection("live");
    current.onmessage = onEvent;
    current.onerror = () => {
      if (current !== source) return;
      setConnection("reconnecting");
      if (current.readyState === EventSource.CLOSED) {
        setTimeout(() => {
          if (current === source) connect();
        }, RETRY_AFTER_CLOSE_MS);
      }
    };
  }

  enlarged.addEventListener("click", () => enlarged.close());
  setConnection("connecting");
  connect();
})();
