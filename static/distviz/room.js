// distviz room client: keeps the page in step with the room's event log.
//
// htmx's hx-ws extension owns the socket and swaps the fragments the server sends. This file
// adds what htmx does not know about: the room's seq (a gap or a reconnect asks for the whole
// state again), the connection status, the commands picture elements carry (data-send),
// keyboard shortcuts, and short-lived flash messages.
(function () {
  "use strict";
  const room = document.getElementById("room");
  if (!room) return;
  const wsUrl = room.getAttribute("hx-ws:connect");
  let lastSeq = Number(room.dataset.seq || 0);
  let flashTimer = null;

  function socket() {
    const reg = window.htmx && htmx.ext && htmx.ext.ws && htmx.ext.ws.getRegistry();
    const conn = reg && reg.get(wsUrl);
    return conn && conn.socket && conn.socket.readyState === WebSocket.OPEN ? conn.socket : null;
  }

  function setStatus(state, text) {
    const el = document.getElementById("conn");
    document.body.dataset.conn = state;
    if (el) el.textContent = text;
  }

  function flash(message, level) {
    const el = document.getElementById("flash");
    if (!el) return;
    el.textContent = message;
    el.className = "flash flash-" + (level || "error");
    armFlash();
  }

  function armFlash() {
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () {
      const el = document.getElementById("flash");
      if (el) { el.textContent = ""; el.className = "flash"; }
    }, 6000);
  }

  // Nothing a person clicks is lost: a command made while the socket is down waits in the
  // outbox, and one sent but not yet answered when the socket drops is sent again on
  // reconnect. Each keeps its id, so the server applies it once however often it arrives.
  const outbox = [];
  const inflight = new Map(); // id -> body, until a frame with that command_id answers it

  function transmit(ws, id, body) {
    inflight.set(id, body);
    if (inflight.size > 100) inflight.delete(inflight.keys().next().value);
    ws.send(JSON.stringify({ headers: { "HX-Request-ID": id }, body: body }));
  }

  function send(body) {
    const id = crypto.randomUUID();
    const ws = socket();
    if (!ws) {
      outbox.push({ id: id, body: body });
      flash("Not connected: your command will be sent when the connection is back.", "info");
      return false;
    }
    transmit(ws, id, body);
    return true;
  }

  function flush() {
    const ws = socket();
    if (!ws) return;
    inflight.forEach(function (body, id) { ws.send(JSON.stringify({ headers: { "HX-Request-ID": id }, body: body })); });
    while (outbox.length) {
      const item = outbox.shift();
      transmit(ws, item.id, item.body);
    }
  }
  window.distviz = { send: send, lastSeq: function () { return lastSeq; }, pending: function () { return outbox.length + inflight.size; } };

  // Forms waiting for their command to be accepted (then cleared) or refused (then kept).
  const pendingForms = new Map();
  document.addEventListener("htmx:after:ws:request", function (evt) {
    const form = evt.target && evt.target.closest ? evt.target.closest("form") : null;
    const id = evt.detail && evt.detail.headers && evt.detail.headers["HX-Request-ID"];
    if (id && evt.detail.body) {
      inflight.set(id, evt.detail.body);
      if (inflight.size > 100) inflight.delete(inflight.keys().next().value);
    }
    if (form && id) {
      pendingForms.set(id, form);
      if (pendingForms.size > 50) pendingForms.delete(pendingForms.keys().next().value);
    }
  });
  // Every answer names its command, refusals too (rate limited, too large, not understood, not
  // allowed): the command leaves the outbox and is never sent again. "settle_all" says the server
  // dropped this socket's frames unread for a while (a flood): nothing sent so far is replayed.
  function settle(json) {
    if (json.settle_all) inflight.clear();
    if (json.command_id) inflight.delete(json.command_id);
    const form = json.command_id && pendingForms.get(json.command_id);
    if (!form) return;
    pendingForms.delete(json.command_id);
    if (json.error) {
      const field = form.querySelector("input:not([type=hidden])");
      if (field) field.focus();
    } else if (form.dataset.keep === undefined) {
      form.querySelectorAll("input[type=text]:not([data-keep]), input:not([type]):not([data-keep])").forEach(function (i) { i.value = ""; });
    }
  }

  document.addEventListener("htmx:before:ws:message", function (evt) {
    const json = evt.detail.message.json;
    if (!json) return;
    settle(json);
    if (json.error) { setTimeout(armFlash, 0); return; }
    if (typeof json.seq !== "number") return;
    if (json.full) { lastSeq = json.seq; return; }
    if (json.seq <= lastSeq) { evt.detail.message.cancelled = true; return; } // already have it
    if (json.from > lastSeq + 1) {
      // A broadcast was missed (the channel layer delivers at most once): ask for everything.
      evt.detail.message.cancelled = true;
      const ws = socket();
      if (ws) ws.send(JSON.stringify({ body: { type: "sync" } })); // the reconnect sends it all anyway
      return;
    }
    lastSeq = json.seq;
  });
  document.addEventListener("htmx:after:ws:message", function () {
    room.dataset.seq = String(lastSeq);
    const lines = document.querySelectorAll("#narration > li");
    for (let i = 40; i < lines.length; i++) lines[i].remove(); // the log keeps them all
    document.dispatchEvent(new CustomEvent("distviz:updated", { detail: { seq: lastSeq } }));
  });

  document.addEventListener("htmx:after:ws:connection", function () {
    setStatus("open", "live");
    setTimeout(flush, 0); // after the socket's own open handlers
  });
  document.addEventListener("htmx:ws:close", function () { setStatus("closed", "reconnecting…"); });
  document.addEventListener("htmx:ws:error", function (evt) {
    // htmx dropped a form's send because the socket is down: keep it for the reconnect.
    if (!(evt.detail && evt.detail.error === "Connection not open")) return;
    const el = evt.target;
    const form = el && el.closest ? el.closest("form") : null;
    const body = {};
    if (form) new FormData(form).forEach(function (v, k) { body[k] = v; });
    const vals = el && el.getAttribute && el.getAttribute("hx-vals");
    if (vals) { try { Object.assign(body, JSON.parse(vals)); } catch (e) { /* not JSON: ignore */ } }
    if (body.type) send(body);
  });

  // Local highlighting, on this screen only: clicking an element with data-highlight="v" marks
  // every element with the same value (class "hl", and "key-highlight" on <body>); again clears.
  let highlighted = null;
  function highlight() {
    document.querySelectorAll("[data-highlight]").forEach(function (c) {
      c.classList.toggle("hl", highlighted !== null && c.dataset.highlight === highlighted);
    });
    document.body.classList.toggle("key-highlight", highlighted !== null);
  }
  document.addEventListener("distviz:updated", highlight);
  function highlightFrom(target) {
    const el = target.closest("[data-highlight]");
    if (!el) return false;
    highlighted = el.dataset.highlight && highlighted !== el.dataset.highlight ? el.dataset.highlight : null;
    highlight();
    return true;
  }
  // In a race, each student finds their own row.
  function markMe() {
    const me = document.getElementById("my-name");
    const name = me ? me.dataset.name : null;
    document.querySelectorAll("[data-student]").forEach(function (el) {
      el.classList.toggle("me", name !== null && el.dataset.student === name);
    });
  }
  document.addEventListener("distviz:updated", markMe);
  document.addEventListener("DOMContentLoaded", markMe);
  // A student's form for the open round (every concept has its own kinds of round).
  function roundForms() {
    const bar = document.getElementById("room-bar");
    const kind = bar ? bar.dataset.round : "";
    const open = bar && bar.dataset.viewOnly !== "1";
    document.querySelectorAll(".round-form").forEach(function (f) {
      f.classList.toggle("active", Boolean(open && kind && f.dataset.roundKind === kind));
    });
  }
  document.addEventListener("distviz:updated", roundForms);
  document.addEventListener("DOMContentLoaded", roundForms);

  document.addEventListener("click", function (evt) {
    const button = evt.target.closest("[data-send]");
    if (button && !button.closest("form")) { send(commandFrom(button)); return; }
    const toggle = evt.target.closest("[data-toggle]");
    if (toggle) { toggles[toggle.dataset.toggle](); return; }
    highlightFrom(evt.target);
  });
  document.addEventListener("change", function (evt) {
    // A control that sends on change: its data-command, its data-arg-* and its own value.
    const control = evt.target.closest("[data-command]");
    if (control) {
      const body = args({ type: control.dataset.command }, control);
      body[control.name] = control.value;
      send(body);
    }
  });
  room.addEventListener("keydown", function (evt) {
    if (evt.key !== "Enter" && evt.key !== " ") return;
    const t = evt.target;
    if (!t || !t.closest || t.tagName === "BUTTON") return;  // a button presses itself
    const el = t.closest("[data-send]");
    if (el && !el.closest("form")) { evt.preventDefault(); send(commandFrom(el)); return; }
    if (highlightFrom(t)) evt.preventDefault();
  });

  // Any element (a button, or a picture element with tabindex="0" role="button") sends a
  // command: data-send="type" plus data-arg-<name>="value" attributes make it, and
  // data-args-from="<form id>" adds that form's fields (a checkbox as true/false).
  function commandFrom(el) {
    const body = { type: el.dataset.send };
    const extra = el.dataset.argsFrom ? document.getElementById(el.dataset.argsFrom) : null;
    if (extra && extra.elements) {
      Array.prototype.forEach.call(extra.elements, function (f) {
        if (!f.name || f.name === "type") return;
        body[f.name] = f.type === "checkbox" ? f.checked : f.value;
      });
    }
    return args(body, el);
  }
  // data-arg-name="x" on a control, or on an element around it (a row naming its node once for
  // all its controls), adds name: "x" to the command it sends: the nearest one wins, and it wins
  // over a data-args-from form's field of the same name (the element says what it acts on).
  function args(body, el) {
    const found = {};
    for (let at = el; at && at.dataset; at = at.parentElement) {
      Object.keys(at.dataset).forEach(function (k) {
        if (!k.startsWith("arg") || k.length <= 3 || k === "argsFrom") return;
        const name = k.charAt(3).toLowerCase() + k.slice(4);
        if (!(name in found)) found[name] = at.dataset[k];
      });
    }
    return Object.assign(body, found);
  }

  // Only a presenter acts on the picture: for everyone else its controls are not tab stops and
  // not announced as buttons (the server would refuse them anyway).
  function pictureControls() {
    if (document.body.dataset.role === "presenter") return;
    document.querySelectorAll(".picture [data-send][tabindex]:not([tabindex='-1'])").forEach(function (el) {
      el.setAttribute("tabindex", "-1");
      if (el.getAttribute("role") === "button") el.setAttribute("role", "img");
    });
  }
  pictureControls();
  document.addEventListener("distviz:updated", pictureControls);

  // One group of a concept's controls open at a time (the first open one stays open), so the
  // open group is on screen beside the picture with every other group's heading above or below.
  document.querySelectorAll("#controls details.group:not(#presenter-tools)").forEach(function (d) {
    d.setAttribute("name", "controls");
  });

  // Projection mode, theme and the controls drawer are this screen's own choice (kept locally).
  function setFlag(name, on) {
    document.body.classList.toggle(name, on);
    try { localStorage.setItem("distviz:" + name, on ? "1" : "0"); } catch (e) { /* private mode */ }
  }
  function flag(name) {
    try { return localStorage.getItem("distviz:" + name) === "1"; } catch (e) { return false; }
  }
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  if (flag("projection")) document.body.classList.add("projection");
  try {
    const theme = localStorage.getItem("distviz:theme");
    if (theme === "dark" || theme === "light") document.body.dataset.theme = theme;
  } catch (e) { /* private mode */ }
  const toggles = {
    projection: function () { setFlag("projection", !document.body.classList.contains("projection")); },
    controls: function () { document.body.classList.toggle("controls-open"); },
    theme: function () {
      const now = document.body.dataset.theme || (dark ? "dark" : "light");
      const next = now === "dark" ? "light" : "dark";
      document.body.dataset.theme = next;
      try { localStorage.setItem("distviz:theme", next); } catch (e) { /* private mode */ }
    },
    shortcuts: function () {
      const d = document.getElementById("shortcuts");
      if (d && !d.open) d.showModal(); else if (d) d.close();
    },
  };
  // Starting to present to a class turns projection mode on for the presenter's screen.
  function presenting() {
    const bar = document.getElementById("room-bar");
    return !!bar && bar.dataset.classroom === "1";
  }
  let wasPresenting = presenting();
  document.addEventListener("distviz:updated", function () {
    const now = presenting();
    if (now && !wasPresenting && document.body.dataset.role === "presenter") setFlag("projection", true);
    wasPresenting = now;
  });
  function inLesson() {
    const bar = document.getElementById("room-bar");
    return !!bar && bar.dataset.lesson === "1";
  }

  // Keyboard shortcuts (not while typing in a field).
  const presenterKeys = {
    " ": function () { const b = document.querySelector("#room-bar .play"); if (b) send({ type: b.dataset.send }); },
    ".": function () { send({ type: "step" }); },
    "b": function () { send({ type: "step_back" }); },
    "ArrowRight": function () { if (inLesson()) send({ type: "lesson_next" }); },
    "PageDown": function () { if (inLesson()) send({ type: "lesson_next" }); },
    "ArrowLeft": function () { if (inLesson()) send({ type: "lesson_prev" }); },
    "PageUp": function () { if (inLesson()) send({ type: "lesson_prev" }); },
  };
  const screenKeys = {
    "p": toggles.projection, "t": toggles.theme, "c": toggles.controls, "?": toggles.shortcuts,
  };
  const presenter = document.body.dataset.role === "presenter";
  if (!presenter) delete screenKeys.c; // only a presenter has a controls drawer
  if (!document.querySelector("#room-bar .play")) { delete presenterKeys[" "]; delete presenterKeys["."]; } // no clock here
  if (!document.querySelector("#lesson .lesson-list li button, #lesson.running")) {
    ["ArrowRight", "PageDown", "ArrowLeft", "PageUp"].forEach(function (k) { delete presenterKeys[k]; });
  }
  const shortcuts = Object.assign({}, screenKeys, presenter ? presenterKeys : {});
  // A concept declares its own shortcuts on the controls they press: data-shortcut="l" on a
  // button. A button whose form still needs a typed value focuses that field instead.
  function concepts() {
    const found = {};
    document.querySelectorAll("[data-shortcut]").forEach(function (el) {
      if (el.closest(".presenter-only") && !presenter) return;
      found[el.dataset.shortcut] = el;
    });
    return found;
  }
  function press(el) {
    const group = el.closest("details");
    if (group && !group.open) group.open = true; // its group may be folded away
    const form = el.closest("form");
    const empty = form && Array.prototype.find.call(form.elements, function (f) { return f.required && !f.value; });
    if (empty) { empty.focus(); return; }
    el.click();
  }
  window.distviz.shortcuts = function () { return Object.keys(shortcuts).concat(Object.keys(concepts())); };
  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey) return;
    const t = evt.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    // A focused button, or a control on the picture, keeps Space and Enter (they press it and
    // nothing else); a clicker's PageDown still works.
    if (evt.defaultPrevented) return;
    if (t && t.closest && t.closest("button, [role=button], [data-send]") && (evt.key === " " || evt.key === "Enter")) return;
    const action = shortcuts[evt.key];
    if (action) { evt.preventDefault(); action(); return; }
    const control = concepts()[evt.key];
    if (control) { evt.preventDefault(); press(control); }
  });
  // The sheet lists exactly the keys that work here: the room's own rows are rendered by the
  // server for what this room has; the concept's rows are read from its data-shortcut controls.
  const sheet = document.querySelector("#shortcuts tbody[data-concept-keys]");
  if (sheet) {
    const found = concepts();
    Object.keys(found).forEach(function (key) {
      const el = found[key];
      const row = document.createElement("tr");
      const th = document.createElement("th");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      th.append(kbd);
      const td = document.createElement("td");
      td.textContent = (el.dataset.shortcutLabel || el.textContent || "").trim().toLowerCase();
      row.append(th, td);
      sheet.append(row);
    });
  }
})();
