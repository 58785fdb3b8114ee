/* footfall dashboard: every store, the region roll-ups and the open alerts, live. */
"use strict";

(() => {
  const { el, int, pct, pctValue, change, duration, hhmm, setTile } = FF;

  // Columns of the store table: key (also the sort key), heading, cell text, numeric.
  const COLUMNS = [
    { key: "store_id", label: "Store" },
    { key: "region", label: "Region", fmt: (r) => r.region || "–" },
    { key: "vertical", label: "Vertical", fmt: (r) => r.vertical || "–" },
    { key: "arrivals_15m", label: "In 15 min", num: true, fmt: (r) => int(r.arrivals_15m) },
    { key: "occupancy", label: "Inside", num: true, fmt: (r) => int(r.occupancy) },
    { key: "today_visitors", label: "Today", num: true, fmt: (r) => int(r.today_visitors) },
    { key: "last_week_visitors", label: "Last wk (day)", num: true, fmt: (r) => int(r.last_week_visitors) },
    { key: "vs_last_week", label: "vs last wk", num: true, fmt: (r) => change(r.vs_last_week) },
    { key: "conversion_rate", label: "Conv.", num: true, fmt: (r) => pct(r.conversion_rate) },
    { key: "waiting_now", label: "Waiting", num: true, fmt: (r) => int(r.waiting_now) },
    { key: "est_wait_s", label: "Est. wait", num: true, fmt: (r) => duration(r.est_wait_s) },
    { key: "service_level_pct", label: "Service lvl", num: true, fmt: (r) => pctValue(r.service_level_pct) },
    { key: "alerts_open", label: "Alerts", num: true },
    { key: "as_of_ms", label: "As of", num: true, fmt: (r) => hhmm(r.as_of_ms, r.tz) },
  ];
  const SORT_KEYS = new Set(COLUMNS.map((c) => c.key));
  const VERTICALS = new Set(["retail", "bank", "telecom"]);
  const QUERY_TEXT = /^[A-Za-z0-9 _.:-]{1,64}$/;
  const REGION_TEXT = /^[^\x00-\x1f\x7f<>"'`\\]{1,100}$/;

  const rows = new Map(); // store_id -> row
  const alerts = new Map(); // alert_id -> alert
  const regions = new Map(); // region -> live roll-up
  let chain = null;
  const view = new Map(); // store_id -> {tr, cells, texts}
  let order = []; // store ids in the order last rendered
  const alertsOf = new Map(); // store_id -> {n, severity}

  // The view's state, from the URL (checked like the server does), kept in the URL on every change.
  const params = new URLSearchParams(location.search);
  const state = {
    sort: SORT_KEYS.has(params.get("sort")) ? params.get("sort") : "store_id",
    order: params.get("order") === "desc" ? "desc" : "asc",
    q: QUERY_TEXT.test(params.get("q") || "") ? params.get("q") : "",
    region: REGION_TEXT.test(params.get("region") || "") ? params.get("region") : "",
    vertical: VERTICALS.has(params.get("vertical")) ? params.get("vertical") : "",
    alerts: params.get("alerts") === "1",
  };

  const tbody = document.querySelector("#stores tbody");
  const headRow = document.querySelector("#stores thead tr");
  const qInput = document.getElementById("q");
  const regionSelect = document.getElementById("region");
  const verticalSelect = document.getElementById("vertical");
  const alertsOnly = document.getElementById("alerts-only");

  for (const c of COLUMNS) {
    const th = el("th", { "data-sort": c.key, class: c.num ? "num" : null, text: c.label, scope: "col" });
    th.addEventListener("click", () => {
      if (state.sort === c.key) state.order = state.order === "asc" ? "desc" : "asc";
      else { state.sort = c.key; state.order = c.num ? "desc" : "asc"; }
      saveState();
      renderTable();
    });
    headRow.append(th);
  }
  qInput.value = state.q;
  verticalSelect.value = state.vertical;
  alertsOnly.checked = state.alerts;

  let typing = null;
  qInput.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      const v = qInput.value.trim();
      state.q = QUERY_TEXT.test(v) ? v : "";
      qInput.setCustomValidity(v && !state.q ? "letters, digits, space and _ . : - only" : "");
      saveState();
      renderTable();
    }, 120);
  });
  regionSelect.addEventListener("change", () => { state.region = regionSelect.value; saveState(); scheduleAll(); });
  verticalSelect.addEventListener("change", () => { state.vertical = verticalSelect.value; saveState(); renderTable(); });
  alertsOnly.addEventListener("change", () => { state.alerts = alertsOnly.checked; saveState(); renderTable(); });

  function saveState() {
    const p = new URLSearchParams();
    if (state.sort !== "store_id") p.set("sort", state.sort);
    if (state.order !== "asc") p.set("order", state.order);
    if (state.q) p.set("q", state.q);
    if (state.region) p.set("region", state.region);
    if (state.vertical) p.set("vertical", state.vertical);
    if (state.alerts) p.set("alerts", "1");
    const search = p.toString();
    history.replaceState(null, "", search ? `?${search}` : location.pathname);
  }

  // -- store table -----------------------------------------------------------------------------

  function cellsFor(id) {
    let v = view.get(id);
    if (v) return v;
    const tr = el("tr", { "data-store-id": id });
    const cells = COLUMNS.map((c) => {
      const td = el("td", { class: c.num ? "num" : null, "data-col": c.key });
      tr.append(td);
      return td;
    });
    cells[0].append(el("a", { href: `/stores/${encodeURIComponent(id)}`, text: id }));
    v = { tr, cells, texts: COLUMNS.map(() => null) };
    view.set(id, v);
    return v;
  }

  function updateRow(row) {
    const v = cellsFor(row.store_id);
    const a = alertsOf.get(row.store_id);
    COLUMNS.forEach((c, i) => {
      if (i === 0) return;
      let text;
      if (c.key === "alerts_open") {
        text = a ? `${a.n}|${a.severity}` : "";
        if (text !== v.texts[i]) {
          v.cells[i].replaceChildren(a ? el("span", { class: `badge sev-${a.severity}`, text: String(a.n) }) : "");
          v.texts[i] = text;
        }
        return;
      }
      text = c.fmt(row);
      if (text !== v.texts[i]) {
        v.cells[i].textContent = text;
        v.texts[i] = text;
        if (c.key === "vs_last_week") {
          v.cells[i].classList.toggle("up", FF.isNum(row.vs_last_week) && row.vs_last_week > 1);
          v.cells[i].classList.toggle("down", FF.isNum(row.vs_last_week) && row.vs_last_week < 1);
        }
      }
    });
  }

  function sortValue(row, key) {
    if (key === "alerts_open") {
      const a = alertsOf.get(row.store_id);
      return a ? a.n : null;
    }
    const v = row[key];
    return v === undefined ? null : v;
  }

  function visibleRows() {
    const needle = state.q.toLowerCase();
    const out = [];
    for (const r of rows.values()) {
      if (needle && !`${r.store_id}\u0000${r.region || ""}\u0000${r.vertical || ""}`.toLowerCase().includes(needle)) continue;
      if (state.region && r.region !== state.region) continue;
      if (state.vertical && r.vertical !== state.vertical) continue;
      if (state.alerts && !alertsOf.has(r.store_id)) continue;
      out.push(r);
    }
    const dir = state.order === "desc" ? -1 : 1;
    const key = state.sort;
    out.sort((a, b) => {
      const x = sortValue(a, key);
      const y = sortValue(b, key);
      if (x === null && y === null) return a.store_id < b.store_id ? -1 : 1;
      if (x === null) return 1; // rows without a value last, either way
      if (y === null) return -1;
      if (x < y) return -dir;
      if (x > y) return dir;
      return a.store_id < b.store_id ? -1 : 1;
    });
    return out;
  }

  const dirtyRows = new Set();
  let allDirty = true;

  function renderTable() {
    const shown = visibleRows();
    if (allDirty) for (const id of rows.keys()) dirtyRows.add(id);
    allDirty = false;
    for (const r of shown) {
      // rows filtered out stay marked until they are shown
      if (dirtyRows.has(r.store_id)) { updateRow(r); dirtyRows.delete(r.store_id); }
    }
    const ids = shown.map((r) => r.store_id);
    if (ids.length !== order.length || ids.some((id, i) => id !== order[i])) {
      tbody.replaceChildren(...ids.map((id) => view.get(id).tr));
      order = ids;
    }
    for (const th of headRow.children) {
      th.classList.toggle("sorted-asc", th.dataset.sort === state.sort && state.order === "asc");
      th.classList.toggle("sorted-desc", th.dataset.sort === state.sort && state.order === "desc");
    }
    document.getElementById("shown").textContent = `${shown.length} of ${rows.size} stores`;
  }

  // -- region roll-ups and chain tiles ------------------------------------------------------------

  function renderRegions() {
    const body = document.querySelector("#regions tbody");
    const list = [...regions.values()].sort((a, b) => String(a.key).localeCompare(String(b.key)));
    body.replaceChildren(...list.map((r) => {
      const tr = el("tr", { "data-region": r.key, class: r.key === state.region ? "selected" : null },
        el("td", { text: r.key }),
        el("td", { class: "num", text: int(r.stores) }),
        el("td", { class: "num", text: int(r.occupancy) }),
        el("td", { class: "num", text: int(r.arrivals_15m) }),
        el("td", { class: "num", text: int(r.today_arrivals) }),
        el("td", { class: "num", text: int(r.last_week_arrivals) }),
        el("td", { class: "num", text: change(r.today_vs_last_week_arrivals) }),
        el("td", { class: "num", text: pct(r.today_conversion_rate) }),
        el("td", { class: "num", text: int(r.waiting_now) }));
      tr.addEventListener("click", () => {
        state.region = state.region === r.key ? "" : r.key;
        saveState();
        scheduleAll();
      });
      return tr;
    }));
    // The region filter offers every region known from the roll-ups and the rows.
    const names = new Set([...regions.keys()]);
    for (const r of rows.values()) if (r.region) names.add(r.region);
    if (state.region) names.add(state.region);
    const sorted = [...names].sort();
    const current = [...regionSelect.options].slice(1).map((o) => o.value);
    if (sorted.join("\u0000") !== current.join("\u0000")) {
      regionSelect.replaceChildren(el("option", { value: "", text: "all regions" }),
        ...sorted.map((n) => el("option", { value: n, text: n })));
    }
    regionSelect.value = state.region;

    const c = chain;
    if (c) {
      setTile(document, "stores", int(c.stores), `${int(regions.size)} regions`);
      setTile(document, "arrivals_15m", int(c.arrivals_15m), `5 min ${int(c.arrivals_5m)} · 60 min ${int(c.arrivals_60m)}`);
      setTile(document, "occupancy", int(c.occupancy), "people inside, all stores");
      setTile(document, "today_arrivals", int(c.today_arrivals),
        `same day last week ${int(c.last_week_arrivals)} (whole day)`);
      setTile(document, "conversion_rate", pct(c.today_conversion_rate), `${int(c.today_transactions)} transactions`);
      setTile(document, "waiting_now", int(c.waiting_now), `${int(c.in_service_now)} in service`);
    }
  }

  // -- alerts ----------------------------------------------------------------------------------------

  function tzOf(storeId) {
    const r = rows.get(storeId);
    return r && r.tz ? r.tz : "UTC";
  }

  function recountAlerts() {
    const before = new Map(alertsOf);
    alertsOf.clear();
    for (const a of alerts.values()) {
      const cur = alertsOf.get(a.store_id);
      if (!cur) alertsOf.set(a.store_id, { n: 1, severity: a.severity });
      else {
        cur.n += 1;
        if (FF.SEVERITY_RANK[a.severity] < FF.SEVERITY_RANK[cur.severity]) cur.severity = a.severity;
      }
    }
    for (const id of new Set([...before.keys(), ...alertsOf.keys()])) dirtyRows.add(id);
  }

  function renderAlerts() {
    const list = [...alerts.values()].sort(FF.alertOrder);
    const shown = list.slice(0, 100);
    const ol = document.getElementById("alerts");
    ol.replaceChildren(...(shown.length
      ? shown.map((a) => FF.alertItem(a, tzOf(a.store_id), true))
      : [el("li", { class: "empty", text: "No open alerts." })]));
    if (list.length > shown.length) ol.append(el("li", { class: "empty", text: `and ${list.length - shown.length} more` }));
    document.getElementById("alert-count").textContent = list.length ? `(${list.length})` : "";
  }

  // -- data in ----------------------------------------------------------------------------------------

  let dirty = { table: false, regions: false, alerts: false };
  const render = FF.throttled(() => {
    const d = dirty;
    dirty = { table: false, regions: false, alerts: false };
    if (d.alerts) { recountAlerts(); renderAlerts(); }
    if (d.regions) renderRegions();
    if (d.table || d.alerts) renderTable();
  });
  function scheduleAll() { allDirty = true; dirty = { table: true, regions: true, alerts: true }; render(); }

  function putRow(row) {
    if (!row || typeof row.store_id !== "string") return false;
    const old = rows.get(row.store_id);
    if (old && (old.emitted_at_ms || 0) > (row.emitted_at_ms || 0)) return false;
    rows.set(row.store_id, row);
    dirtyRows.add(row.store_id);
    return true;
  }

  function putRegion(r) {
    if (!r) return;
    if (r.level === "chain") chain = r;
    else if (r.level === "region" && typeof r.key === "string") {
      const old = regions.get(r.key);
      if (!old || (r.seq || 0) >= (old.seq || 0)) regions.set(r.key, r);
    }
  }

  function putAlert(a) {
    if (!a || typeof a.alert_id !== "string") return;
    if (a.state === "resolved") alerts.delete(a.alert_id);
    else alerts.set(a.alert_id, a);
  }

  let loading = null;
  let retry = null;
  async function loadSnapshot() {
    if (loading) return loading;
    clearTimeout(retry);
    loading = (async () => {
      try {
        const snap = await FF.getJSON("/api/overview");
        const fresh = new Set();
        for (const row of snap.stores) { putRow(row); fresh.add(row.store_id); }
        for (const id of [...rows.keys()]) if (!fresh.has(id)) rows.delete(id);
        regions.clear();
        for (const r of snap.regions) putRegion(r);
        chain = snap.chain;
        alerts.clear();
        for (const a of snap.alerts) putAlert(a);
        FF.showNotice(snap.stores.length ? "" : "No store has reported yet: waiting for the worker's first live records.");
        document.body.dataset.loadedAt = String(snap.now_ms);
        scheduleAll();
      } catch (e) {
        if (!e.locked) FF.showNotice("Could not read the stores (Redis unavailable?); trying again shortly.");
        retry = setTimeout(loadSnapshot, 5000);
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  FF.connect("/api/events", {
    rows: (list) => { let any = false; for (const r of list) any = putRow(r) || any; if (any) { dirty.table = true; render(); } },
    regions: (list) => { for (const r of list) putRegion(r); dirty.regions = true; render(); },
    alerts: (list) => { for (const a of list) putAlert(a); dirty.alerts = true; render(); },
  }, loadSnapshot);
})();
