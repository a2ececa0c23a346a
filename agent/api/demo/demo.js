// The demo kiosk page: live identities and device states over the local API's WebSocket.
// Everything shown is masked here as in the agent's logs, and written with textContent
// only: this page runs on an origin the API trusts, so it must never execute data.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_ROWS = 30;

  // The token comes in the URL fragment (never sent to any server); it is then removed
  // from the address bar and kept for this tab only, so a reload still works.
  const frag = new URLSearchParams(location.hash.slice(1));
  let token = frag.get("token");
  if (token) {
    sessionStorage.setItem("ehc-agent-token", token);
    history.replaceState(null, "", location.pathname + location.search);
  } else {
    token = sessionStorage.getItem("ehc-agent-token");
  }

  function maskNumber(s) {
    const r = Array.from(s || "");
    const n = r.length;
    if (n === 0) return "";
    if (n <= 4) return "*".repeat(n);
    if (n <= 8) return "*".repeat(n - 2) + r.slice(n - 2).join("");
    return r.slice(0, 4).join("") + "*".repeat(n - 8) + r.slice(n - 4).join("");
  }
  function maskName(s) {
    const r = Array.from(s || "");
    if (r.length === 0) return "";
    if (r.length === 1) return "*";
    return r[0] + "*".repeat(r.length - 1);
  }

  function setConn(state, text) {
    const el = $("conn");
    el.dataset.state = state;
    el.textContent = text;
  }

  // Device states: the status message's "devices" map and "device" messages.
  const devices = new Map();
  function field(o, k) { return o[k] !== undefined ? o[k] : o[k.charAt(0).toUpperCase() + k.slice(1)]; }
  function setDevice(name, st) {
    devices.set(name, { state: field(st, "state") || "unknown", reason: field(st, "reason") || "",
      detail: field(st, "detail") || "", hint: field(st, "hint") || "" });
    renderDevices();
  }
  function renderDevices() {
    const ul = $("devices");
    ul.replaceChildren();
    for (const [name, st] of [...devices.entries()].sort()) {
      const li = document.createElement("li");
      li.dataset.device = name;
      const s = document.createElement("span");
      s.className = "state state-" + st.state;
      s.textContent = st.state;
      li.append(s, " " + name + (st.reason ? " (" + st.reason + ")" : ""));
      // What to do about it, in plain words (agent/hints), with the detail that names
      // e.g. the program holding a port.
      if (st.hint) {
        const h = document.createElement("div");
        h.className = "hint";
        h.textContent = (st.detail ? st.detail + " — " : "") + st.hint;
        li.append(h);
      }
      ul.append(li);
    }
  }

  function describe(ev) {
    const what = ev.code ? ev.code.type + (ev.code.scheme ? "/" + ev.code.scheme : "")
      : ev.card ? ev.card.kind : (ev.source && ev.source.kind) || "";
    const v = ev.verification || {};
    const verdict = v.status ? v.status + (v.reason ? " (" + v.reason + ")" : "") + (v.trust_stale ? " [trust stale]" : "") : "";
    const id = ev.identity || {};
    const who = [];
    if (id.name) who.push(maskName(id.name));
    if (id.id_number) who.push(maskNumber(id.id_number));
    if (id.ehc_id) who.push("EHC " + maskNumber(id.ehc_id));
    if (!id.name && !id.id_number && !id.ehc_id && ev.code && ev.code.masked) who.push(ev.code.masked);
    if (ev.application) {
      // A card application's event: the applicant comes masked from the agent.
      const ap = ev.application;
      const ok = ap.result === "created" || ap.result === "existing";
      who.push(ap.applicant.name, ap.applicant.id_number);
      if (ap.ehc_id) who.push("EHC " + ap.ehc_id.slice(0, 4) + "…" + ap.ehc_id.slice(-4));
      return { what: "card_application", verdict: ap.result + (ap.reason ? " (" + ap.reason + ")" : ""),
               status: ok ? "valid" : "invalid", who: who.join("  ") };
    }
    return { what, verdict, status: v.status || "", who: who.join("  ") };
  }

  // A payment code or insurance voucher arrives unmasked, live only, right after its
  // masked event: a real kiosk hands msg.code to its payment (or insurance) SDK here.
  // This page only notes that it came, and shows nothing of it.
  function channelCode(msg) {
    const tr = document.querySelector('tr[data-seq="' + msg.seq + '"]');
    if (tr && tr.lastChild) tr.lastChild.textContent += "  → " + msg.type + " channel";
  }

  let lastSeq = 0;   // newest event shown
  let resumeSeq = null; // every event after it reached this page (null: not known yet)
  function showEvent(seq, ev, replay) {
    resumeSeq = Math.max(resumeSeq || 0, seq);
    if (seq <= lastSeq) return; // already shown (a reconnect's replay overlaps)
    lastSeq = seq;
    const d = describe(ev);
    const time = new Date(ev.occurred_at).toLocaleTimeString();

    const tr = document.createElement("tr");
    tr.dataset.seq = String(seq);
    if (replay) tr.className = "replay";
    for (const t of [String(seq), time, ev.source ? ev.source.device : "", d.what, d.verdict, d.who]) {
      const td = document.createElement("td");
      td.textContent = t;
      tr.append(td);
    }
    const body = $("events");
    body.prepend(tr);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);

    // An event from while we were away is history, not "who is here"; nor is a card
    // application, which the apply panel answers.
    if (replay || ev.application) return;
    const who = $("who");
    who.className = "";
    who.dataset.seq = String(seq);
    who.replaceChildren();
    const line1 = document.createElement("div");
    line1.textContent = d.who || d.what;
    const line2 = document.createElement("div");
    const st = document.createElement("span");
    st.className = "status-" + d.status;
    st.textContent = d.verdict;
    line2.append(st, "  " + time + " · " + (ev.source ? ev.source.device : ""));
    who.append(line1, line2);
  }

  // A read whose event could not be saved (a full disk): the agent says nothing of
  // whose it was, and the patient is sent to the desk.
  function readFailed(msg) {
    const who = $("who");
    who.className = "failed";
    delete who.dataset.seq;
    who.replaceChildren();
    const line1 = document.createElement("div");
    line1.textContent = "This scan could not be saved: please go to the registration desk.";
    const line2 = document.createElement("div");
    line2.className = "hint";
    line2.textContent = msg.reason + " · " + new Date(msg.at).toLocaleTimeString() + " · " + msg.device + (msg.hint ? " — " + msg.hint : "");
    who.append(line1, line2);
  }

  function showStatus(s) {
    const devs = s.devices || {};
    for (const name of Object.keys(devs)) setDevice(name, devs[name]);
    const parts = [];
    if (s.terminal_id) parts.push("terminal " + s.terminal_id);
    const ob = s.outbox || {};
    const pending = field(ob, "pending");
    if (pending !== undefined) parts.push("outbox " + pending);
    $("agent").textContent = parts.join(" · ");
    const tr = s.trust || {};
    const th = $("trust-hint");
    const jn = s.journal || {};
    const notes = [];
    if (tr.reason) notes.push("trust " + tr.reason + " — " + (tr.hint || ""));
    if (jn.reason) notes.push("storage " + jn.reason + " — " + (jn.hint || ""));
    th.textContent = notes.join("\n");
    th.hidden = notes.length === 0;
  }

  let backoff = 500;
  function connect() {
    if (!token) {
      setConn("no_token", "no token: open /demo/#token=…");
      return;
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    // The first connection is live only: a kiosk must not greet patients who have left.
    // A reconnection asks for everything after the last event it had.
    const resuming = resumeSeq !== null;
    const url = scheme + location.host + "/v1/ws" + (resuming ? "?after=" + resumeSeq : "");
    const ws = new WebSocket(url, ["ehc-agent.v1", "ehc-agent.bearer." + token]);
    let first = true;
    ws.onopen = () => { backoff = 500; setConn("connected", "connected"); resyncReceipt(); };
    ws.onmessage = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      switch (msg.type) {
        case "event": showEvent(msg.seq, msg.event, !!msg.replay); break;
        case "device": setDevice(msg.device.device, msg.device); break;
        case "receipt": receiptOutcome(msg.application_id, msg.receipt); break;
        case "payment": case "insurance": channelCode(msg); break;
        case "read_failed": readFailed(msg); break;
        case "status":
          if (first && !resuming && msg.status.api) resumeSeq = Math.max(resumeSeq || 0, msg.status.api.last_seq || 0);
          first = false;
          showStatus(msg.status);
          break;
        case "error": console.warn("agent:", msg.error, msg.message || ""); break;
      }
    };
    ws.onclose = (e) => {
      setConn("disconnected", "disconnected" + (e.reason ? ": " + e.reason : "") + " — retrying");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }
  connect();

  // Apply for a card (PLATFORM.md, "Card application"): place the ID card, confirm,
  // consent, and the new card's code is shown and printed. The data shown for
  // confirmation is masked like everything on this page; the agent sends it unmasked.
  const CONSENT_VERSION = "2026-01";
  const apply = $("apply");
  let card = null;
  let pollTimer = null;
  // The receipt is printed after the answer: its outcome comes as a "receipt" message,
  // which may overtake the answer itself; the last outcome of each application is kept.
  const receipts = new Map();
  function receiptOutcome(id, r) {
    if (!id || !r) return;
    receipts.set(id, r);
    if (receipts.size > 20) receipts.delete(receipts.keys().next().value);
    if (apply.dataset.application === id) showReceipt(id, r);
  }
  // A receipt message is not replayed: after a reconnection, a receipt still shown as
  // printing is asked for (INTEGRATION.md: a kiosk that was disconnected asks
  // GET /v1/applications/{id}).
  function resyncReceipt() {
    const id = apply.dataset.application;
    if (!id || apply.dataset.step !== "done" || $("apply-receipt").dataset.state !== "printing") return;
    api("/v1/applications/" + encodeURIComponent(id))
      .then((r) => r.ok ? r.json() : null)
      .then((b) => { if (b && b.receipt && b.receipt.state !== "printing") receiptOutcome(id, b.receipt); })
      .catch(() => {});
  }
  function showReceipt(id, r) {
    const rc = $("apply-receipt");
    const again = $("apply-reprint");
    rc.dataset.state = r.state;
    again.hidden = r.state !== "failed";
    switch (r.state) {
      case "printing": rc.textContent = "Printing your receipt…"; delete rc.dataset.error; break;
      case "printed": rc.textContent = "Take your receipt from the printer."; delete rc.dataset.error; break;
      case "none": rc.textContent = "No receipt: this terminal has no printer."; delete rc.dataset.error; break;
      default:
        rc.textContent = "No receipt: " + (r.hint || r.reason || "");
        rc.dataset.error = r.reason || "print_failed";
    }
  }
  function api(path, init) {
    init = init || {};
    init.headers = Object.assign({ Authorization: "Bearer " + token }, init.headers || {});
    return fetch(path, init);
  }
  function step(name) {
    apply.dataset.step = name;
    if (pollTimer !== null && name !== "place") { clearTimeout(pollTimer); pollTimer = null; }
  }
  function fail(reason, message) {
    $("apply-error").textContent = reason + (message ? ": " + message : "");
    step("error");
  }
  function pollCard() {
    pollTimer = null;
    api("/v1/applications/id-card").then((r) => {
      if (apply.dataset.step !== "place") return;
      if (r.status === 404) return r.json().then((b) => {
        if (b.error === "applications_off") fail(b.error, b.message);
        else pollTimer = setTimeout(pollCard, 500);
      });
      if (!r.ok) { pollTimer = setTimeout(pollCard, 1000); return; }
      return r.json().then(showCard);
    }).catch(() => { if (apply.dataset.step === "place") pollTimer = setTimeout(pollCard, 1000); });
  }
  function showCard(c) {
    card = c;
    const id = c.identity || {};
    const gender = { "1": "male", "2": "female" }[id.gender] || "";
    const dl = $("apply-card");
    dl.replaceChildren();
    for (const [k, v] of [["Name", maskName(id.name)], ["ID number", maskNumber(id.id_number)], ["Gender", gender],
      ["Valid to", id.id_valid_to || ""]]) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
    step("confirm");
  }
  function send() {
    step("sending");
    const body = { source: "id_card_reader", card_seq: card.seq, consent: { text_version: CONSENT_VERSION } };
    api("/v1/applications", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then((r) => r.json().then((b) => {
        if (!r.ok) { fail(b.error, b.message); return; }
        $("apply-code").textContent = b.code;
        $("apply-created").textContent = b.created ? "A new card was issued." : "You already have a card: here is its code.";
        apply.dataset.application = b.application_id;
        // An outcome that came before the answer is newer than the answer's "printing".
        const early = receipts.get(b.application_id);
        showReceipt(b.application_id, (b.receipt && b.receipt.state === "printing" && early) || b.receipt || { state: "failed" });
        step("done");
        // The QR image needs the token, which an <img> cannot send: fetched, then
        // shown as a data: URL (the page's policy allows no blob: images).
        api("/v1/applications/" + encodeURIComponent(b.application_id) + "/qr.png?size=240")
          .then((q) => q.ok ? q.blob() : Promise.reject(q.status))
          .then((blob) => new Promise((res) => { const fr = new FileReader(); fr.onload = () => res(fr.result); fr.readAsDataURL(blob); }))
          .then((url) => { $("apply-qr").src = url; })
          .catch(() => { $("apply-qr").alt = "QR image not available"; });
      }))
      .catch((e) => fail("agent_unreachable", String(e)));
  }
  $("apply-reprint").addEventListener("click", () => {
    const id = apply.dataset.application;
    if (!id) return;
    receipts.delete(id);
    api("/v1/applications/" + encodeURIComponent(id) + "/receipt", { method: "POST" })
      .then((r) => r.json().then((b) => {
        if (!r.ok) { showReceipt(id, { state: "failed", reason: b.error, hint: b.message }); return; }
        showReceipt(id, (b.receipt.state === "printing" && receipts.get(id)) || b.receipt);
      }))
      .catch(() => {});
  });
  $("apply-start").addEventListener("click", () => { card = null; step("place"); pollCard(); });
  $("apply-confirm").addEventListener("click", () => step("consent"));
  $("apply-consent").addEventListener("click", send);
  for (const b of document.querySelectorAll(".apply-cancel")) {
    b.addEventListener("click", () => { card = null; $("apply-qr").removeAttribute("src"); step("idle"); });
  }
})();
