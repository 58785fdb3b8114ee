/* footfall dashboard: one store now, today's arrivals per bucket with the forecast, open alerts. */
"use strict";

(() => {
  const { el, svg, int, pct, pctValue, change, duration, hhmm, dayTime, setTile, isNum } = FF;
  const QUEUE_VERTICALS = new Set(["bank", "telecom"]);

  const storeId = decodeURIComponent(location.pathname.split("/").pop() || "");
  const root = document.getElementById("tiles");
  if (!FF.STORE_ID.test(storeId)) {
    FF.showNotice("Not a store id.");
    return;
  }
  document.getElementById("store-id").textContent = storeId;
  document.title = `footfall · ${storeId}`;

  let snap = null; // the last snapshot: store metadata and the chart's day
  let row = null; // the store now
  const buckets = new Map(); // bucket start ms -> point
  const forecasts = {}; // series -> forecast
  const alerts = new Map(); // alert_id -> alert
  let missing = false; // the store has no data yet

  function tz() { return (snap && snap.tz) || (row && row.tz) || "UTC"; }

  // -- tiles -------------------------------------------------------------------------------------------

  /** Arrivals of today's closed buckets, and last week's in the same buckets: today so far vs last week. */
  function soFar() {
    let now = 0;
    let before = 0;
    let n = 0;
    for (const p of buckets.values()) {
      if (p.status !== "closed" || !isNum(p.last_week) || !isNum(p.arrivals)) continue;
      now += p.arrivals;
      before += p.last_week;
      n += 1;
    }
    return n ? { now, before } : null;
  }

  function renderTiles() {
    const r = row || {};
    const vertical = r.vertical || (snap && snap.vertical);
    const meta = [r.region || (snap && snap.region), vertical, tz()].filter(Boolean).join(" · ");
    document.getElementById("store-meta").textContent = meta;
    setTile(root, "arrivals_15m", int(r.arrivals_15m), `5 min ${int(r.arrivals_5m)} · 60 min ${int(r.arrivals_60m)}`);
    setTile(root, "occupancy", int(r.occupancy),
      isNum(r.drift) && r.drift > 0 ? `${int(r.drift)} more exits than entries seen (drift)` : "people inside now");
    let lastWeek = isNum(r.last_week_visitors)
      ? `same day last week ${int(r.last_week_visitors)} (whole day)` : "no figures for the same day last week";
    const sf = soFar();
    if (sf && sf.before > 0) lastWeek += `\nby this time last week ${int(sf.before)} (${change(sf.now / sf.before)})`;
    setTile(root, "today_visitors", int(r.today_visitors), lastWeek);
    setTile(root, "conversion_rate", pct(r.conversion_rate),
      isNum(r.today_transactions) ? `${int(r.today_transactions)} transactions` : "");
    const queue = Boolean(r.has_queue) || QUEUE_VERTICALS.has(vertical);
    for (const t of root.querySelectorAll(".tile.queue")) t.classList.toggle("hidden", !queue);
    if (queue) {
      setTile(root, "waiting_now", int(r.waiting_now),
        `${int(r.in_service_now)} in service · ${int(r.counters_active)} counters open`);
      setTile(root, "est_wait_s", duration(r.est_wait_s), `90 % of answered waits under ${duration(r.wait_p90_s)}`);
      setTile(root, "service_level_pct", pctValue(r.service_level_pct),
        `answered within ${duration(snap ? snap.target_wait_s : null)}`);
    }
    document.getElementById("as-of").textContent = isNum(r.as_of_ms)
      ? `Store time ${dayTime(r.as_of_ms, tz())} (${tz()}); figures update as events arrive.` : "";
  }

  // -- chart ---------------------------------------------------------------------------------------------

  const W = 960;
  const H = 280;
  const M = { l: 46, r: 12, t: 14, b: 26 };

  /** A y axis up to `top`: a round whole step and the multiple of it above `top` (about 4 gridlines). */
  function yScale(top) {
    const want = Math.max(top * 1.05, 1);
    const raw = want / 4;
    const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
    let step = 10 * p;
    for (const m of [1, 2, 2.5, 5]) {
      if (m * p >= raw && Number.isInteger(m * p)) { step = m * p; break; }
    }
    return { step, max: step * Math.ceil(want / step) };
  }

  function renderChart() {
    const box = document.getElementById("chart");
    if (!snap) { box.replaceChildren(); return; }
    const c = snap.chart;
    const bucketMs = c.bucket_ms;
    const fc = forecasts.arrivals;
    let points = fc ? fc.points.filter((p) => p.target_ms >= c.day_start_ms) : [];
    // Today; late in the day, stretched so that the next 6 hours of the forecast show.
    const x0 = c.day_start_ms;
    let x1 = c.day_end_ms;
    const asOf = row && isNum(row.as_of_ms) ? row.as_of_ms : x0;
    for (const p of points) x1 = Math.max(x1, Math.min(p.target_ms + bucketMs, asOf - (asOf % bucketMs) + 6 * 3600000));
    points = points.filter((p) => p.target_ms < x1);
    const span = x1 - x0;
    const pw = W - M.l - M.r;
    const ph = H - M.t - M.b;
    const x = (ms) => M.l + ((ms - x0) / span) * pw;
    const bw = (bucketMs / span) * pw;
    const bars = [...buckets.values()].filter((p) => p.start_ms >= x0 && p.start_ms < x1).sort((a, b) => a.start_ms - b.start_ms);
    let top = 0;
    for (const p of bars) top = Math.max(top, p.arrivals || 0, p.last_week || 0);
    for (const p of points) top = Math.max(top, p.hi95 ?? p.hi80 ?? p.forecast);
    const { step, max: yMax } = yScale(top);
    const y = (v) => M.t + ph - (Math.max(0, v) / yMax) * ph;

    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `Arrivals per bucket on ${c.day}, with the forecast and its intervals` });
    for (let v = 0; v <= yMax; v += step) {
      g.append(svg("line", { class: "gridline", x1: M.l, x2: W - M.r, y1: y(v), y2: y(v) }));
      g.append(svg("text", { class: "tick", x: M.l - 6, y: y(v) + 4, "text-anchor": "end" }, int(v)));
    }
    // Hour ticks at local 00, 03, 06 ... (bucket starts, so a 23- or 25-hour day is drawn right).
    for (let t = x0; t < x1; t += bucketMs) {
      const [h, m] = FF.hourMinute(t, tz());
      if (m !== 0 || h % 3 !== 0) continue;
      g.append(svg("line", { class: "axis", x1: x(t), x2: x(t), y1: M.t + ph, y2: M.t + ph + 4 }));
      g.append(svg("text", { class: "tick", x: x(t), y: H - 8, "text-anchor": "middle" }, `${String(h).padStart(2, "0")}:00`));
    }
    // Forecast: 95 % band, 80 % band, the forecast itself.
    const mid = (ms) => x(ms) + bw / 2;
    const band = (lo, hi, cls) => {
      const ok = points.filter((p) => isNum(p[lo]) && isNum(p[hi]));
      if (ok.length < 1) return;
      const upper = ok.map((p) => `${mid(p.target_ms).toFixed(1)},${y(p[hi]).toFixed(1)}`);
      const lower = ok.slice().reverse().map((p) => `${mid(p.target_ms).toFixed(1)},${y(p[lo]).toFixed(1)}`);
      if (ok.length === 1) {
        const p = ok[0];
        g.append(svg("rect", { class: cls, x: x(p.target_ms), width: bw, y: y(p[hi]), height: Math.max(1, y(p[lo]) - y(p[hi])) }));
      } else g.append(svg("polygon", { class: cls, points: [...upper, ...lower].join(" ") }));
    };
    band("lo95", "hi95", "band95");
    band("lo80", "hi80", "band80");
    // Actual arrivals per bucket.
    for (const p of bars) {
      if (!isNum(p.arrivals)) continue;
      const rect = svg("rect", { class: p.status === "closed" ? "bar" : "bar open", x: x(p.start_ms) + 0.5,
        width: Math.max(1, bw - 1), y: y(p.arrivals), height: Math.max(0, M.t + ph - y(p.arrivals)),
        "data-start-ms": p.start_ms });
      rect.append(svg("title", {}, `${hhmm(p.start_ms, tz())}–${hhmm(p.start_ms + bucketMs, tz())}: ${int(p.arrivals)} arrivals`
        + (isNum(p.last_week) ? ` (last week ${int(p.last_week)})` : "") + (p.status === "closed" ? "" : " so far")));
      g.append(rect);
    }
    // The same bucket last week, as a dashed line broken where it is unknown.
    let seg = [];
    const flush = () => { if (seg.length > 1) g.append(svg("polyline", { class: "lastweek", points: seg.join(" ") })); seg = []; };
    for (const p of bars) {
      if (isNum(p.last_week)) seg.push(`${mid(p.start_ms).toFixed(1)},${y(p.last_week).toFixed(1)}`);
      else flush();
    }
    flush();
    if (points.length) {
      const line = svg("polyline", { class: "forecast", points: points.map((p) => `${mid(p.target_ms).toFixed(1)},${y(p.forecast).toFixed(1)}`).join(" ") });
      g.append(line);
      for (const p of points) {
        const dot = svg("circle", { class: "forecast", cx: mid(p.target_ms), cy: y(p.forecast), r: 1.5 });
        dot.append(svg("title", {}, `${hhmm(p.target_ms, tz())}: forecast ${int(p.forecast)}`
          + (isNum(p.lo80) ? `, 80 % ${int(p.lo80)}–${int(p.hi80)}` : "") + (isNum(p.lo95) ? `, 95 % ${int(p.lo95)}–${int(p.hi95)}` : "")));
        g.append(dot);
      }
    }
    if (row && isNum(row.as_of_ms) && row.as_of_ms >= x0 && row.as_of_ms <= x1) {
      g.append(svg("line", { class: "now", x1: x(row.as_of_ms), x2: x(row.as_of_ms), y1: M.t, y2: M.t + ph }));
    }
    g.append(svg("line", { class: "axis", x1: M.l, x2: W - M.r, y1: M.t + ph, y2: M.t + ph }));
    if (!bars.length && !points.length) {
      g.append(svg("text", { class: "nodata", x: W / 2, y: H / 2, "text-anchor": "middle" }, "No buckets yet today."));
    }
    box.replaceChildren(g);

    document.getElementById("chart-title").textContent =
      `Arrivals per ${Math.round(bucketMs / 60000)} min, ${c.day} (${tz()})`;
    const legend = [el("li", { class: "sw-bar", text: "arrivals (closed bucket)" }),
      el("li", { class: "sw-open", text: "open bucket, so far" }),
      el("li", { class: "sw-lastweek", text: "same bucket last week" })];
    if (fc) {
      legend.push(el("li", { class: "sw-forecast",
        text: `forecast (${fc.model || "model"}${fc.cold ? ", cold start" : ""}, made ${hhmm(fc.made_at_ms, tz())})` }));
      legend.push(el("li", { class: "sw-band80", text: "80 % interval" }), el("li", { class: "sw-band95", text: "95 % interval" }));
    } else legend.push(el("li", { class: "muted", text: "no forecast yet" }));
    document.getElementById("legend").replaceChildren(...legend);
  }

  // -- alerts ---------------------------------------------------------------------------------------------

  function renderAlerts() {
    const list = [...alerts.values()].sort(FF.alertOrder);
    document.getElementById("alerts").replaceChildren(...(list.length
      ? list.map((a) => FF.alertItem(a, tz(), false))
      : [el("li", { class: "empty", text: "No open alerts for this store." })]));
    document.getElementById("alert-count").textContent = list.length ? `(${list.length})` : "";
  }

  // -- data in -----------------------------------------------------------------------------------------------

  let dirty = { tiles: false, chart: false, alerts: false };
  const render = FF.throttled(() => {
    const d = dirty;
    dirty = { tiles: false, chart: false, alerts: false };
    if (d.tiles) renderTiles();
    if (d.chart) renderChart();
    if (d.alerts) renderAlerts();
  });
  function scheduleAll() { dirty = { tiles: true, chart: true, alerts: true }; render(); }

  function putAlert(a) {
    if (!a || typeof a.alert_id !== "string" || a.store_id !== storeId) return;
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
        const data = await FF.getJSON(`/api/stores/${encodeURIComponent(storeId)}`);
        if (data === null) {
          missing = true;
          FF.showNotice("No data for this store yet; the page fills in when its first events are counted.");
          return;
        }
        missing = false;
        FF.showNotice("");
        snap = data;
        if (data.row && (!row || (row.emitted_at_ms || 0) <= (data.row.emitted_at_ms || 0))) row = data.row;
        buckets.clear();
        for (const p of data.chart.buckets) buckets.set(p.start_ms, p);
        for (const k of Object.keys(forecasts)) delete forecasts[k];
        Object.assign(forecasts, data.forecasts);
        alerts.clear();
        for (const a of data.alerts) putAlert(a);
        document.body.dataset.loadedAt = String(data.now_ms);
        scheduleAll();
      } catch (e) {
        FF.showNotice("Could not read the store (Redis unavailable?); trying again shortly.");
        retry = setTimeout(loadSnapshot, 5000);
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  FF.connect(`/api/events?store=${encodeURIComponent(storeId)}`, {
    live: (r) => {
      if (missing || !snap || (r.day && r.day !== snap.chart.day)) { row = r; loadSnapshot(); return; }
      if (row && (row.emitted_at_ms || 0) > (r.emitted_at_ms || 0)) return;
      row = r;
      dirty.tiles = true;
      dirty.chart = true;
      render();
    },
    buckets: (list) => {
      if (!snap) return;
      for (const p of list) {
        if (p.day === snap.chart.day) buckets.set(p.start_ms, p);
        else if (p.day && p.day > snap.chart.day) { loadSnapshot(); return; }
      }
      dirty.chart = true;
      dirty.tiles = true;
      render();
    },
    forecasts: (list) => {
      for (const f of list) if (f && typeof f.series === "string") forecasts[f.series] = f;
      dirty.chart = true;
      render();
    },
    alerts: (list) => { for (const a of list) putAlert(a); dirty.alerts = true; render(); },
  }, loadSnapshot);
})();
