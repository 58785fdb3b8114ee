/* footfall dashboard: formatting, DOM and SVG building, and the live connection. */
"use strict";

const FF = (() => {
  const STORE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
  const DASH = "–";
  const numbers = new Intl.NumberFormat("en-US");
  const timeFormats = new Map();

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);

  /** 1234 -> "1,234". */
  function int(v) { return isNum(v) ? numbers.format(Math.round(v)) : DASH; }

  /** A ratio as a percentage: 0.2222 -> "22.2 %". */
  function pct(ratio) { return isNum(ratio) ? `${(ratio * 100).toFixed(1)} %` : DASH; }

  /** A value already in percent: 81.25 -> "81.3 %". */
  function pctValue(v) { return isNum(v) ? `${v.toFixed(1)} %` : DASH; }

  /** today / last week as a signed change: 1.12 -> "+12 %". */
  function change(ratio) {
    if (!isNum(ratio)) return DASH;
    const p = Math.round((ratio - 1) * 100);
    return `${p > 0 ? "+" : ""}${p} %`;
  }

  /** Seconds as "45 s", "7 min", "1 h 05 min". */
  function duration(s) {
    if (!isNum(s)) return DASH;
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.round(s / 60)} min`;
    const h = Math.floor(s / 3600);
    return `${h} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
  }

  function zoneFormat(tz, opts) {
    const key = `${tz}|${JSON.stringify(opts)}`;
    let f = timeFormats.get(key);
    if (!f) {
      try {
        f = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: tz || "UTC" });
      } catch (e) {
        f = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: "UTC" });
      }
      timeFormats.set(key, f);
    }
    return f;
  }

  /** Epoch ms as local "14:05" in time zone `tz`. */
  function hhmm(ms, tz) {
    return isNum(ms) ? zoneFormat(tz, { hour: "2-digit", minute: "2-digit", hour12: false }).format(ms) : DASH;
  }

  /** Epoch ms as local "24 Nov 14:05". */
  function dayTime(ms, tz) {
    return isNum(ms)
      ? zoneFormat(tz, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false }).format(ms)
      : DASH;
  }

  /** Local hour and minute of `ms` in `tz`. */
  function hourMinute(ms, tz) {
    const parts = zoneFormat(tz, { hour: "2-digit", minute: "2-digit", hour12: false }).formatToParts(ms);
    const get = (t) => Number((parts.find((p) => p.type === t) || {}).value);
    return [get("hour") % 24, get("minute")];
  }

  /** An element with attributes and children (text children become text nodes: never parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Set a tile's value and note, only when they changed. */
  function setTile(root, name, value, sub) {
    const tile = root.querySelector(`[data-tile="${name}"]`);
    if (!tile) return;
    const v = tile.querySelector(".value");
    const s = tile.querySelector(".sub");
    if (v.textContent !== value) v.textContent = value;
    if (s && s.textContent !== (sub || "")) s.textContent = sub || "";
  }

  const LOCKED = "This dashboard needs its access token: open this page once as ?token=<token> (ask whoever runs it).";

  /** No (or a wrong) token: say so in the corner and how to get in. */
  function lock() {
    document.body.dataset.locked = "1";
    const conn = document.getElementById("conn");
    if (conn) { conn.dataset.state = "locked"; conn.textContent = "token needed"; }
    showNotice(LOCKED);
  }

  /** Whether the event stream was refused for want of a token (EventSource does not tell the status). */
  async function checkLocked(url) {
    const ctl = new AbortController();
    try {
      const response = await fetch(url, { cache: "no-store", credentials: "same-origin", signal: ctl.signal });
      if (response.status === 401) lock();
    } catch (e) {
      /* down or unreachable: the stream's own retries say so */
    } finally {
      ctl.abort();
    }
  }

  /** A JSON read; null on 404. On 401 (no or a wrong token) the page says how to get in and the error is `locked`. */
  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 404) return null;
    if (response.status === 401) {
      lock();
      const error = new Error("401");
      error.locked = true;
      throw error;
    }
    delete document.body.dataset.locked;
    if (!response.ok) throw new Error(`${response.status}`);
    return response.json();
  }

  function showNotice(text) {
    const n = document.getElementById("notice");
    if (!n) return;
    n.textContent = text || "";
    n.classList.toggle("hidden", !text);
  }

  /**
   * The page's event stream. `onOpen` runs at every (re)connection, so the page reads its snapshot
   * again; events are dispatched to `handlers` by name. EventSource retries by itself; if it gives
   * up (CLOSED), a new one is made after a growing pause.
   */
  function connect(url, handlers, onOpen) {
    const conn = document.getElementById("conn");
    const state = (s, text) => { conn.dataset.state = s; conn.textContent = text; };
    let delay = 1000;
    let source = null;
    function start() {
      source = new EventSource(url);
      source.addEventListener("open", () => {
        delay = 1000; delete document.body.dataset.locked; state("live", "live"); onOpen();
      });
      source.addEventListener("error", () => {
        if (!document.body.dataset.locked) state("reconnecting", "reconnecting…");
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          checkLocked(url);
          setTimeout(start, delay);
          delay = Math.min(delay * 2, 10000);
        }
      });
      source.addEventListener("status", (ev) => {
        const d = parse(ev.data);
        if (d && d.redis === false) state("down", "Redis unavailable");
        else if (d && d.redis === true) state("live", "live");
      });
      source.addEventListener("hello", (ev) => {
        const d = parse(ev.data);
        if (d && d.redis === false) state("down", "Redis unavailable");
      });
      source.addEventListener("resync", () => onOpen());
      for (const [name, fn] of Object.entries(handlers)) {
        source.addEventListener(name, (ev) => { const d = parse(ev.data); if (d !== undefined) fn(d); });
      }
    }
    start();
  }

  function parse(text) {
    try { return JSON.parse(text); } catch (e) { return undefined; }
  }

  /** Calls `fn` at most once per animation frame however often it is asked for. */
  function throttled(fn) {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; fn(); });
    };
  }

  const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
  function alertOrder(a, b) {
    return (SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity])
      || ((b.updated_ms || b.started_ms || 0) - (a.updated_ms || a.started_ms || 0));
  }

  /** One alert as a list item: kind, severity, store link (optional), when, explanation. */
  function alertItem(a, tz, withStore) {
    const sev = SEVERITY_RANK[a.severity] === undefined ? "info" : a.severity;
    const head = el("div", { class: "head" },
      el("span", { class: "kind", text: String(a.kind).replaceAll("_", " ") }),
      el("span", { class: "sev", text: sev }),
      withStore ? el("a", { href: `/stores/${encodeURIComponent(a.store_id)}`, text: a.store_id }) : null,
      el("span", { class: "when", text: `since ${dayTime(a.started_ms, tz)}` }));
    const expected = isNum(a.expected_lo) && isNum(a.expected_hi)
      ? `observed ${int(a.observed)}, expected ${int(a.expected_lo)}–${int(a.expected_hi)}` : "";
    return el("li", { class: `sev-${sev}`, "data-alert-id": a.alert_id },
      head, el("div", { class: "why", text: a.explanation || expected }));
  }

  return {
    STORE_ID, DASH, isNum, int, pct, pctValue, change, duration, hhmm, dayTime, hourMinute, el, svg, setTile,
    getJSON, showNotice, connect, throttled, alertOrder, alertItem, SEVERITY_RANK,
  };
})();
