/* footfall dashboard: one store now and its data quality, today's arrivals per bucket with the forecast,
 * staffing, insights, comparable stores, customer segments, open alerts. */
"use strict";

(() => {
  const { el, svg, int, pct, pctValue, change, duration, hhmm, dayTime, setTile, isNum, DASH } = FF;
  const QUEUE_VERTICALS = new Set(["bank", "telecom"]);
  const NO_SALES_VERTICALS = new Set(["bank"]); // no tills: no transactions, no conversion to show

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
  const staffing = { latest: null, today: new Map() }; // the latest staffing record; made_at_ms -> chart point
  let insights = null; // the latest insights record (as the server parsed it)
  let segments = null; // the latest segments record (as the server parsed it)
  let quality = null; // the latest closed bucket's quality record (as the server parsed it)
  let peers = null; // the store against its peer group (`footfall peers`, as the server parsed it)
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
    // Tiles by vertical: a shop's conversion; a branch's or a telecom shop's queue (a bank has no tills).
    const sales = !NO_SALES_VERTICALS.has(vertical);
    for (const t of root.querySelectorAll(".tile.sales")) t.classList.toggle("hidden", !sales);
    if (sales) {
      setTile(root, "conversion_rate", pct(r.conversion_rate),
        isNum(r.today_transactions) ? `${int(r.today_transactions)} transactions` : "");
    }
    const queue = Boolean(r.has_queue) || QUEUE_VERTICALS.has(vertical);
    for (const t of root.querySelectorAll(".tile.queue")) t.classList.toggle("hidden", !queue);
    if (queue) {
      setTile(root, "waiting_now", int(r.waiting_now), `${int(r.in_service_now)} in service`);
      // The store's own check of this estimate (shown at issue, against the wait that followed) once it means something.
      const checked = isNum(r.est_wait_checked) && r.est_wait_checked >= 10 && isNum(r.est_wait_mae_s);
      setTile(root, "est_wait_s", duration(r.est_wait_s), checked
        ? `off by ${duration(r.est_wait_mae_s)} on average here today (${int(r.est_wait_checked)} tickets checked)`
        : `90 % of answered waits under ${duration(r.wait_p90_s)}`);
      setTile(root, "service_level_pct", pctValue(r.service_level_pct),
        `answered within ${duration(snap ? snap.target_wait_s : null)}`);
      const next = staffing.latest && staffing.latest.unit === "counters" ? staffing.latest.points[0] : null;
      setTile(root, "counters_active", int(r.counters_active),
        next ? `${int(next.recommended)} recommended from ${hhmm(next.target_ms, tz())}` : "serving in the last hour");
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

  /** Gridlines and y ticks up to `yMax`, and local hour ticks at 00, 03, 06 ... (bucket starts, so a 23- or
   * 25-hour day is drawn right). */
  function axes(g, { x, y, x0, x1, step, yMax, bucketMs, ph }) {
    for (let v = 0; v <= yMax; v += step) {
      g.append(svg("line", { class: "gridline", x1: M.l, x2: W - M.r, y1: y(v), y2: y(v) }));
      g.append(svg("text", { class: "tick", x: M.l - 6, y: y(v) + 4, "text-anchor": "end" }, int(v)));
    }
    for (let t = x0; t < x1; t += bucketMs) {
      const [h, m] = FF.hourMinute(t, tz());
      if (m !== 0 || h % 3 !== 0) continue;
      g.append(svg("line", { class: "axis", x1: x(t), x2: x(t), y1: M.t + ph, y2: M.t + ph + 4 }));
      g.append(svg("text", { class: "tick", x: x(t), y: H - 8, "text-anchor": "middle" }, `${String(h).padStart(2, "0")}:00`));
    }
  }

  /** The charts' end (both charts share their time axis): the day's, stretched late in the day so that the
   * next 6 hours of the arrivals forecast and of the staffing recommended ahead show. */
  function chartEnd(c) {
    const asOf = row && isNum(row.as_of_ms) ? row.as_of_ms : c.day_start_ms;
    const ahead = [...(forecasts.arrivals ? forecasts.arrivals.points : []), ...(staffing.latest ? staffing.latest.points : [])];
    let x1 = c.day_end_ms;
    for (const p of ahead) {
      if (p.target_ms >= c.day_start_ms) {
        x1 = Math.max(x1, Math.min(p.target_ms + c.bucket_ms, asOf - (asOf % c.bucket_ms) + 6 * 3600000));
      }
    }
    return x1;
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
    const x1 = chartEnd(c);
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
    axes(g, { x, y, x0, x1, step, yMax, bucketMs, ph });
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

  // -- staffing ------------------------------------------------------------------------------------------

  /** The advice line: the record's own when the counters open are too few, else that they meet the target. */
  function adviceText(L) {
    const next = L.points[0];
    if (L.unit === "associates") {
      return L.advice || `${int(next.recommended)} associates on the floor recommended from ${hhmm(next.target_ms, tz())}`
        + (isNum(next.arrivals) ? ` (${int(next.arrivals)} visitors expected)` : "") + ".";
    }
    if (L.advice) return L.advice;
    const target = isNum(L.target_sl) && isNum(L.answer_s)
      ? ` (${Math.round(L.target_sl * 100)} % served within ${duration(L.answer_s)})` : "";
    const open = isNum(L.counters_active) ? `The ${int(L.counters_active)} counters open meet` : "The counters open meet";
    return `${open} the target${target}: ${int(next.recommended)} needed from ${hhmm(next.target_ms, tz())}.`;
  }

  /** A step line through `pts` ([ms, value]), each value held for `holdMs` or until the next point; broken at
   * missing values and gaps longer than `holdMs`. */
  function steps(g, pts, holdMs, x, y, cls) {
    let seg = [];
    const flush = () => { if (seg.length > 1) g.append(svg("polyline", { class: cls, points: seg.join(" ") })); seg = []; };
    pts.forEach(([t, v], i) => {
      if (!isNum(v)) { flush(); return; }
      const next = pts[i + 1];
      const end = next && next[0] - t <= holdMs ? next[0] : t + holdMs;
      seg.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`, `${x(end).toFixed(1)},${y(v).toFixed(1)}`);
      if (end !== (next && next[0])) flush();
    });
    flush();
  }

  function renderStaffing() {
    const panel = document.getElementById("staffing-panel");
    const L = staffing.latest;
    const today = [...staffing.today.values()].sort((a, b) => a.made_at_ms - b.made_at_ms);
    if (!snap || (!L && !today.length)) { panel.classList.add("hidden"); return; }
    panel.classList.remove("hidden");
    const c = snap.chart;
    const bucketMs = c.bucket_ms;
    const unit = L ? L.unit : "counters";
    const advice = document.getElementById("staffing-advice");
    advice.textContent = L ? adviceText(L) : "";
    advice.classList.toggle("hidden", !L);
    advice.classList.toggle("short", Boolean(L && L.advice));
    advice.dataset.state = L && L.advice ? "short" : "ok";

    const x0 = c.day_start_ms;
    const x1 = chartEnd(c);
    const ahead = (L ? L.points : []).filter((p) => p.target_ms >= x0 && p.target_ms < x1);
    const hist = today.filter((p) => p.made_at_ms >= x0 && p.made_at_ms < x1);
    const span = x1 - x0;
    const pw = W - M.l - M.r;
    const ph = H - M.t - M.b;
    const x = (ms) => M.l + ((Math.min(Math.max(ms, x0), x1) - x0) / span) * pw;
    let top = 0;
    for (const p of hist) top = Math.max(top, p.recommended, isNum(p.active) ? p.active : 0);
    for (const p of ahead) top = Math.max(top, p.recommended);
    const { step, max: yMax } = yScale(top);
    const y = (v) => M.t + ph - (Math.max(0, v) / yMax) * ph;
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `${unit} recommended and active on ${c.day}, and recommended ahead` });
    axes(g, { x, y, x0, x1, step, yMax, bucketMs, ph });
    steps(g, ahead.map((p) => [p.target_ms, p.recommended]), bucketMs, x, y, "staff-ahead");
    steps(g, hist.map((p) => [p.made_at_ms, p.active]), bucketMs, x, y, "staff-active");
    steps(g, hist.map((p) => [p.made_at_ms, p.recommended]), bucketMs, x, y, "staff-need");
    for (const p of hist) {
      const dot = svg("circle", { class: "staff-need", cx: x(p.made_at_ms), cy: y(p.recommended), r: 2,
        "data-made-at-ms": p.made_at_ms });
      dot.append(svg("title", {}, `${hhmm(p.made_at_ms, tz())}: ${int(p.recommended)} ${unit} needed for the next interval`
        + (isNum(p.active) ? `, ${int(p.active)} active` : "")));
      g.append(dot);
    }
    for (const p of ahead) {
      const dot = svg("circle", { class: "staff-ahead", cx: x(p.target_ms + bucketMs / 2), cy: y(p.recommended), r: 1.5 });
      dot.append(svg("title", {}, `${hhmm(p.target_ms, tz())}–${hhmm(p.target_ms + bucketMs, tz())}: ${int(p.recommended)} ${unit}`
        + (isNum(p.arrivals) ? ` for ${int(p.arrivals)} customers` : "")
        + (isNum(p.service_level) ? `, service level ${pct(p.service_level)}` : "")
        + (isNum(p.sl_at_active) ? ` (${pct(p.sl_at_active)} with the counters open now)` : "")));
      g.append(dot);
    }
    if (row && isNum(row.as_of_ms) && row.as_of_ms >= x0 && row.as_of_ms <= x1) {
      g.append(svg("line", { class: "now", x1: x(row.as_of_ms), x2: x(row.as_of_ms), y1: M.t, y2: M.t + ph }));
    }
    g.append(svg("line", { class: "axis", x1: M.l, x2: W - M.r, y1: M.t + ph, y2: M.t + ph }));
    if (!hist.length && !ahead.length) {
      g.append(svg("text", { class: "nodata", x: W / 2, y: H / 2, "text-anchor": "middle" }, "No staffing records today."));
    }
    document.getElementById("staffing-chart").replaceChildren(g);
    document.getElementById("staffing-title").textContent = unit === "associates"
      ? `Staffing: associates on the floor, ${c.day}` : `Staffing: counters needed and open, ${c.day}`;
    const legend = [el("li", { class: "sw-staff-need", text: `${unit} recommended for the next interval, as made` })];
    if (unit === "counters") legend.push(el("li", { class: "sw-staff-active", text: "counters active" }));
    if (L) {
      const basis = L.unit === "counters"
        ? `${L.model === "erlang_a" ? "Erlang A" : "Erlang C"}, ${isNum(L.target_sl) ? Math.round(L.target_sl * 100) : "–"} % within ${duration(L.answer_s)}`
          + `, mean service ${duration(L.aht_s)}` + (L.quantile ? `, staffed on ${L.quantile}` : "")
        : (L.model || "ratio");
      legend.push(el("li", { class: "sw-staff-ahead", text: `recommended ahead (${basis}, made ${hhmm(L.made_at_ms, tz())})` }));
    }
    document.getElementById("staffing-legend").replaceChildren(...legend);
  }

  function putStaffing(latest, points) {
    if (latest && (!staffing.latest || (staffing.latest.made_at_ms || 0) <= (latest.made_at_ms || 0))) {
      staffing.latest = latest;
    }
    for (const p of points || []) {
      if (p && isNum(p.made_at_ms) && isNum(p.recommended)) staffing.today.set(p.made_at_ms, p);
    }
  }

  // -- insights -------------------------------------------------------------------------------------------

  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]; // the heatmap's rows, as the stage gives them
  const SHADES = 8; // heatmap shading steps: classes hm-1 .. hm-8 (the CSP allows no inline style)

  /** A series name in words: "tickets_issued" -> "tickets issued". */
  function words(name) { return String(name).replaceAll("_", " "); }

  /** A mean count, one decimal: 42 -> "42.0". */
  function mean1(v) { return isNum(v) ? v.toFixed(1) : DASH; }

  /** A change already in percent, signed: 3.04 -> "+3.0 %". */
  function signedPct(v) { return isNum(v) ? `${v > 0 ? "+" : ""}${v.toFixed(1)} %` : DASH; }

  /** "10:00–11:00" of a local hour 0-23. */
  function hourSpan(h) { return `${String(h).padStart(2, "0")}:00–${String(h + 1).padStart(2, "0")}:00`; }

  /** One heatmap cell: shaded by its share of the busiest cell, blank when the 4 weeks had no such hour. */
  function heatCell(v, days, d, h, top, name) {
    const where = `${WEEKDAYS[d]} ${hourSpan(h)}`;
    if (!isNum(v)) return el("td", { class: "hm-none", "data-day": d, "data-hour": h, title: `${where}: no data` });
    const shade = v > 0 && top > 0 ? Math.max(1, Math.ceil((v / top) * SHADES)) : 0;
    return el("td", { class: `hm-${shade}`, "data-day": d, "data-hour": h, "data-value": v,
      title: `${where}: ${mean1(v)} ${words(name)}` + (isNum(days) ? ` (mean of ${days} days)` : "") });
  }

  /** The weekday × hour grid of the first series with one (arrivals: the stage lists it first). */
  function renderHeatmap(I) {
    const name = I.series.find((s) => I.heatmap[s]);
    document.getElementById("heatmap").classList.toggle("hidden", !name);
    document.getElementById("heatmap-legend").classList.toggle("hidden", !name);
    if (!name) return;
    const { mean, weeks } = I.heatmap[name];
    let top = 0;
    for (const row of mean) for (const v of row) if (isNum(v)) top = Math.max(top, v);
    const table = document.getElementById("heatmap");
    table.tHead.replaceChildren(el("tr", {}, el("th", {}),
      ...mean[0].map((_, h) => el("th", { scope: "col", text: String(h).padStart(2, "0") }))));
    table.tBodies[0].replaceChildren(...mean.map((row, d) => el("tr", {}, el("th", { scope: "row", text: WEEKDAYS[d] }),
      ...row.map((v, h) => heatCell(v, weeks[d][h], d, h, top, name)))));
    document.getElementById("heatmap-title").textContent =
      `${words(name)} per hour, mean over the last 4 weeks (to ${I.day})`;
    document.getElementById("heatmap-legend").replaceChildren(
      el("li", { class: "sw-hm-low", text: "fewer" }),
      el("li", { class: "sw-hm-high", text: `${mean1(top)} per hour (the busiest)` }),
      el("li", { class: "sw-hm-none", text: "blank: no such hour in the 4 weeks" }));
  }

  /** A table cell of the day-against table: a number, or a signed change coloured by its direction. */
  function versusCell(col, text, changePct) {
    const dir = isNum(changePct) && changePct !== 0 ? (changePct > 0 ? " up" : " down") : "";
    return el("td", { class: `num${dir}`, "data-col": col, text });
  }

  function renderVersus(I) {
    document.getElementById("insights-today-title").textContent = `${I.day} against last week / last year`;
    const rows = I.series.filter((s) => I.today[s]).map((s) => {
      const t = I.today[s];
      return el("tr", { "data-series": s }, el("td", { text: words(s) }),
        versusCell("total", int(t.total)),
        versusCell("last_week", int(t.last_week)),
        versusCell("last_week_change_pct", signedPct(t.last_week_change_pct), t.last_week_change_pct),
        versusCell("last_year", int(t.last_year)),
        versusCell("last_year_change_pct", signedPct(t.last_year_change_pct), t.last_year_change_pct));
    });
    document.getElementById("insights-today").classList.toggle("hidden", !rows.length);
    document.querySelector("#insights-today tbody").replaceChildren(...rows);
  }

  /** One series' week in a line: mean daily total against the week before's, and Welch's test of them. */
  function weekLine(s, v) {
    let test = "no test (too few days or no spread)";
    if (typeof v.significant === "boolean") {
      const p = isNum(v.p) ? (v.p < 0.001 ? "p < 0.001" : `p = ${v.p.toFixed(3)}`) : "p –";
      test = `${p}, ${v.significant ? "significant" : "not significant"}`;
    }
    return `${words(s)}: ${mean1(v.mean)} a day against ${mean1(v.last_mean)} the week before`
      + ` (${signedPct(v.change_pct)}); ${test}`;
  }

  function renderWeek(I) {
    const wk = I.week;
    document.getElementById("insights-week").classList.toggle("hidden", !wk);
    if (!wk) return;
    document.getElementById("insights-week-title").textContent = `Week ${wk.week_start} to ${wk.week_end} against the week before`;
    document.getElementById("insights-week-lines").replaceChildren(...I.series.filter((s) => wk.series[s])
      .map((s) => el("li", { "data-series": s, text: weekLine(s, wk.series[s]) })));
    const c = wk.correlation;
    const pair = `Daily ${words(c.x || "arrivals")} against ${c.y ? words(c.y) : "nothing"}`;
    document.getElementById("insights-correlation").textContent = isNum(c.r)
      ? `${pair}: correlation r = ${c.r.toFixed(2)} over ${int(c.days)} days of the last 4 weeks.`
      : `${pair}: too few days for a correlation (${int(c.days)}).`;
  }

  function renderInsights() {
    const panel = document.getElementById("insights-panel");
    const I = insights;
    if (!I || !I.series.length) { panel.classList.add("hidden"); return; }
    panel.classList.remove("hidden");
    document.getElementById("insights-title").textContent = `Insights, ${I.day}`;
    renderHeatmap(I);
    renderVersus(I);
    renderWeek(I);
  }

  /** Keep `I` unless the record kept was made later (a snapshot read from the cache may be older than a push). */
  function putInsights(I) {
    if (I && Array.isArray(I.series) && (!insights || (insights.made_at_ms || 0) <= (I.made_at_ms || 0))) insights = I;
  }

  // -- segments -------------------------------------------------------------------------------------------

  const SEGMENT_KINDS = { till: "Till transactions", visit: "Visits" };

  /** One kind's segments as a table: description, share of the day so far, share of the closed bucket. */
  function segmentTable(k, bucket) {
    const head = el("tr", {}, el("th", { text: "segment" }), el("th", { class: "num", text: "share today" }),
      el("th", { class: "num", text: `share ${bucket}` }));
    const rows = k.segments.map((s) => el("tr", { "data-segment-id": s.segment_id },
      el("td", { "data-col": "description", text: s.description }),
      el("td", { class: "num", "data-col": "day_share", text: pct(s.day_share),
        title: `${int(s.day_count)} of ${int(k.day_events)} today` }),
      el("td", { class: "num", "data-col": "bucket_share", text: pct(s.bucket_share),
        title: `${int(s.bucket_count)} of ${int(k.bucket_events)} ${bucket}` })));
    return el("div", { class: "segment-kind", "data-kind": k.kind },
      el("h3", { text: `${SEGMENT_KINDS[k.kind] || words(k.kind)} (${int(k.day_events)} today)` }),
      el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  function renderSegments() {
    const panel = document.getElementById("segments-panel");
    const S = segments;
    if (!S || !S.kinds.length) { panel.classList.add("hidden"); return; }
    panel.classList.remove("hidden");
    const bucket = isNum(S.made_at_ms) && isNum(S.bucket_ms)
      ? `${hhmm(S.made_at_ms, tz())}–${hhmm(S.made_at_ms + S.bucket_ms, tz())}` : "of the last bucket";
    document.getElementById("segments-title").textContent = `Customer segments${S.day ? `, ${S.day}` : ""}`;
    document.getElementById("segments").replaceChildren(...S.kinds.map((k) => segmentTable(k, bucket)));
  }

  function putSegments(S) {
    if (S && Array.isArray(S.kinds) && (!segments || (segments.made_at_ms || 0) <= (S.made_at_ms || 0))) segments = S;
  }

  // -- data quality ---------------------------------------------------------------------------------------

  // Tiles counted from door sensors (in and out counts): marked while the latest bucket's quality is partial or missing.
  const DOOR_TILES = ["arrivals_15m", "occupancy", "today_visitors", "conversion_rate"];
  const QUALITY_WORDS = { ok: "ok", partial: "partial", missing: "missing", no_sensors: "no sensors" };

  /** One sensor's line when the bucket was not ok: silent, or the share of the bucket it covered. */
  function sensorLine(s, silent, okCoverage) {
    if (silent.has(s.sensor_id)) return el("li", { class: "silent", "data-sensor": s.sensor_id, text: `sensor ${s.sensor_id} silent` });
    if (isNum(s.coverage) && s.coverage < okCoverage) {
      return el("li", { class: "low", "data-sensor": s.sensor_id, text: `sensor ${s.sensor_id} ${pct(s.coverage)} covered` });
    }
    return null;
  }

  function renderQuality() {
    const box = document.getElementById("quality");
    const Q = quality;
    const suspect = Boolean(Q) && (Q.quality === "partial" || Q.quality === "missing");
    for (const name of DOOR_TILES) {
      const tile = root.querySelector(`[data-tile="${name}"]`);
      if (!tile) continue;
      tile.classList.toggle("suspect", suspect);
      tile.classList.toggle("suspect-missing", suspect && Q.quality === "missing");
      if (suspect) tile.setAttribute("title", `based on ${Q.quality} sensor data`);
      else tile.removeAttribute("title");
    }
    if (!Q) { box.classList.add("hidden"); return; }
    box.classList.remove("hidden");
    box.dataset.quality = Q.quality;
    const badge = document.getElementById("quality-badge");
    badge.className = `q-badge q-${Q.quality}`;
    badge.textContent = `Data quality: ${QUALITY_WORDS[Q.quality] || Q.quality}`;
    const end = isNum(Q.bucket_ms) ? `–${hhmm(Q.bucket_start_ms + Q.bucket_ms, tz())}` : "";
    const coverage = isNum(Q.coverage) ? `coverage ${pct(Q.coverage)}` : "no sensors known";
    document.getElementById("quality-text").textContent =
      `bucket ${dayTime(Q.bucket_start_ms, tz())}${end} · ${coverage}`
      + (isNum(Q.sensors_known) ? ` of ${int(Q.sensors_known)} sensor${Q.sensors_known === 1 ? "" : "s"}` : "");
    const silent = new Set(Q.silent_sensors);
    const okCoverage = isNum(Q.ok_coverage) ? Q.ok_coverage : 0.9;
    const lines = Q.quality === "ok" ? [] : Q.sensors.map((s) => sensorLine(s, silent, okCoverage)).filter(Boolean);
    // A silent sensor the record names without its coverage still gets its line.
    if (Q.quality !== "ok") {
      for (const id of Q.silent_sensors) {
        if (!Q.sensors.some((s) => s.sensor_id === id)) {
          lines.push(el("li", { class: "silent", "data-sensor": id, text: `sensor ${id} silent` }));
        }
      }
    }
    document.getElementById("quality-sensors").replaceChildren(...lines);
    const up = Q.uptime;
    document.getElementById("quality-uptime").classList.toggle("hidden", !up);
    if (up) {
      document.getElementById("quality-uptime-title").textContent = `Uptime ${up.day}:`;
      document.getElementById("quality-uptime-list").replaceChildren(...up.sensors.map((s) =>
        el("li", { "data-sensor": s.sensor_id, class: isNum(s.uptime) && s.uptime < okCoverage ? "low" : null,
          text: `${s.sensor_id} ${pct(s.uptime)}` })));
    }
  }

  /** Keep `Q` unless the record kept is of a later bucket (a snapshot read from the cache may be older than a push). */
  function putQuality(Q) {
    if (Q && Array.isArray(Q.sensors) && Array.isArray(Q.silent_sensors) && isNum(Q.bucket_start_ms)
        && (!quality || quality.bucket_start_ms <= Q.bucket_start_ms)) quality = Q;
  }

  // -- comparable stores ----------------------------------------------------------------------------------

  /** "412 arrivals on 2026-01-05, 7.9 % above the median of 3 peers (380)", or why there is no comparison. */
  function peersLine(P) {
    if (!isNum(P.arrivals)) return `No arrivals known for ${P.day}.`;
    if (!isNum(P.peer_median_arrivals) || !isNum(P.vs_peers_pct)) {
      return `${P.arrivals.toLocaleString()} arrivals on ${P.day}; no peer has that day to compare with.`;
    }
    const pct = Math.abs(P.vs_peers_pct).toFixed(1);
    const side = P.vs_peers_pct > 0 ? `${pct} % above` : P.vs_peers_pct < 0 ? `${pct} % below` : "level with";
    const n = isNum(P.peers_compared) ? P.peers_compared : "its";
    let text = `${P.arrivals.toLocaleString()} arrivals on ${P.day}, ${side} the median of ${n} peer`
      + `${P.peers_compared === 1 ? "" : "s"} (${Math.round(P.peer_median_arrivals).toLocaleString()})`;
    if (isNum(P.vs_peers_level_pct)) text += `; against its usual day, ${signedPct(P.vs_peers_level_pct)} vs theirs`;
    return `${text}.`;
  }

  function renderPeers() {
    const panel = document.getElementById("peers-panel");
    const P = peers;
    panel.classList.toggle("hidden", !P);
    if (!P) return;
    panel.dataset.groupId = String(P.group_id);
    document.getElementById("peers-line").textContent = peersLine(P);
    const size = isNum(P.group_size) ? `, ${P.group_size} stores` : "";
    document.getElementById("peers-group").textContent =
      `Group ${P.group_id}${size}: ${P.group_description || "no description"}`
      + `${P.grouped_on ? ` (grouped on ${P.grouped_on})` : ""}. Nearest in shape:`;
    document.getElementById("peers-list").replaceChildren(...(P.peers.length
      ? P.peers.map((id) => el("li", {}, el("a", { href: `/stores/${encodeURIComponent(id)}`, text: id })))
      : [el("li", { class: "empty", text: "no other store in the group" })]));
  }

  function putPeers(P) {
    if (P && Array.isArray(P.peers) && isNum(P.group_id)
        && (!peers || (peers.emitted_at_ms || 0) <= (P.emitted_at_ms || 0))) peers = P;
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

  const CLEAN = { tiles: false, chart: false, staffing: false, insights: false, segments: false, quality: false,
    peers: false, alerts: false };
  let dirty = { ...CLEAN };
  const render = FF.throttled(() => {
    const d = dirty;
    dirty = { ...CLEAN };
    if (d.tiles) renderTiles();
    if (d.chart) renderChart();
    if (d.staffing) renderStaffing();
    if (d.insights) renderInsights();
    if (d.segments) renderSegments();
    if (d.quality) renderQuality();
    if (d.peers) renderPeers();
    if (d.alerts) renderAlerts();
  });
  function scheduleAll() {
    dirty = { tiles: true, chart: true, staffing: true, insights: true, segments: true, quality: true, peers: true,
      alerts: true };
    render();
  }

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
        staffing.latest = null;
        staffing.today.clear();
        if (data.staffing) putStaffing(data.staffing.latest, data.staffing.today);
        insights = null;
        putInsights(data.insights);
        segments = null;
        putSegments(data.segments);
        quality = null;
        putQuality(data.quality);
        peers = null;
        putPeers(data.peers);
        document.body.dataset.loadedAt = String(data.now_ms);
        scheduleAll();
      } catch (e) {
        if (!e.locked) FF.showNotice("Could not read the store (Redis unavailable?); trying again shortly.");
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
      dirty.staffing = true;
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
      dirty.staffing = true;
      render();
    },
    staffing: (s) => {
      if (!snap || !s) return;
      putStaffing(s.latest, (s.points || []).filter((p) => p && p.made_at_ms >= snap.chart.day_start_ms));
      dirty.staffing = true;
      dirty.tiles = true;
      dirty.chart = true; // the time axis they share may stretch
      render();
    },
    insights: (I) => { putInsights(I); dirty.insights = true; render(); },
    segments: (S) => { putSegments(S); dirty.segments = true; render(); },
    quality: (Q) => { putQuality(Q); dirty.quality = true; render(); },
    peers: (P) => { putPeers(P); dirty.peers = true; render(); },
    alerts: (list) => { for (const a of list) putAlert(a); dirty.alerts = true; render(); },
  }, loadSnapshot);
})();
