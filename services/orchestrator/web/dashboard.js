// pktpath dashboard: the topology with live counters, the recent traced packets, and one
// packet's journey (#packet=HOST:ID) as a waterfall of layer visits across hosts.
// Plain JavaScript, no build and no external resources: everything comes from the
// orchestrator's /api/*.
"use strict";

const COUNTERS_MS = 1500;
const PACKETS_MS = 2000;
const JOURNEY_MS = 2000;
const LAYER_DESC = {
  socket: "socket API", l4: "UDP · TCP · ping", l3: "IPv4 · IPv6 · netfilter · routing",
  l2: "Ethernet · ARP · neighbours", softirq: "NAPI · qdisc", nic: "device · DMA rings",
};
const KINDS = ["COPY", "CLONE", "DMA", "DROP", "FREE"];
const TAG_NAMES = {  // a header's short name in the waterfall's header stack
  ethernet: "eth", ipv4: "ip", ipv6: "ip6", "ipv6-frag": "frag", "ipv6-hopopts": "hbh", "ipv6-dstopts": "dstopt",
  "ipv6-route": "rthdr",
};

const state = {
  topology: null, hostIndex: {}, counters: null, prevCounters: null, prevAt: 0,
  filter: "", selected: null, journeyKey: "", journeyJson: "", journey: null, visit: null,
};

// -- helpers ----------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function hostColor(host) {
  const i = state.hostIndex[host];
  return `var(--host${(i === undefined ? 0 : i) % 4})`;
}

function fmtInt(n) { return (n || 0).toLocaleString("en-US"); }

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function fmtNs(ns) {
  if (ns === null || ns === undefined) return "–";
  if (ns < 1000) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

function fmtUs(us) { return us === null || us === undefined ? "–" : fmtNs(us * 1000); }

function fmtAge(s) {
  if (s === undefined) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h`;
}

async function getJson(url) {
  const reply = await fetch(url, { cache: "no-store" });
  const body = await reply.json().catch(() => ({ error: `HTTP ${reply.status}` }));
  if (!reply.ok) throw new Error(body.error || `HTTP ${reply.status}`);
  return body;
}

function setStatus(ok, text) {
  const s = document.getElementById("status");
  s.className = `status ${ok ? "live" : "down"}`;
  document.getElementById("status-text").textContent = text;
}

// -- topology and live counters ---------------------------------------------------------
function layerCounters(host, layer) {
  const h = state.counters && state.counters.hosts.find((x) => x.name === host);
  return h ? h.layers[layer] : null;
}

function rate(host, layer) {
  // Packets per second from the last two polls of the layer's latency count.
  if (!state.prevCounters || !state.counters) return null;
  const now = state.counters.hosts.find((x) => x.name === host);
  const before = state.prevCounters.hosts.find((x) => x.name === host);
  if (!now || !before) return null;
  const dt = state.counters.at - state.prevCounters.at;
  const dn = now.layers[layer].summary.packets - before.layers[layer].summary.packets;
  return dt > 0 && dn >= 0 ? dn / dt : null;
}

function moveChips(moves) {
  return ["COPY", "CLONE", "DMA"].filter((k) => moves[k] && moves[k].count).map((k) =>
    el("span", { class: `chip ${k}`, title: moves[k].by_func.map((f) => `${f.func}: ${fmtInt(f.count)}, ${fmtBytes(f.bytes)}`).join("\n") },
      `${k} ${fmtInt(moves[k].count)} · ${fmtBytes(moves[k].bytes)}`));
}

function layerBox(host, layer) {
  const c = layerCounters(host, layer);
  const box = el("div", { class: "layer", "data-host": host, "data-layer": layer });
  const top = el("div", { class: "layer-top" },
    el("span", {}, el("span", { class: "layer-name" }, layer), " ", el("span", { class: "layer-desc" }, LAYER_DESC[layer] || "")));
  box.append(top);
  if (!c) return box;
  if (!c.up) {
    box.classList.add("down");
    box.append(el("div", { class: "chips" }, el("span", { class: "chip down" }, "not answering")));
    return box;
  }
  const s = c.summary;
  const r = rate(host, layer);
  if (s.packets) {  // packets its latency histogram observed: a layer that times no batches has no count here
    top.append(el("span", { class: "layer-pkts" }, `${fmtInt(s.packets)} packet${s.packets === 1 ? "" : "s"}`,
      r ? el("span", { class: "rate" }, ` · ${r.toFixed(r < 10 ? 1 : 0)}/s`) : null));
  }
  if (s.latency.count) {
    box.append(el("div", { class: "layer-lat" }, "p50 ", el("b", {}, fmtUs(s.latency.p50_us)),
      "  ·  p99 ", el("b", {}, fmtUs(s.latency.p99_us)), "  ·  mean ", fmtUs(s.latency.mean_us)));
  } else {
    box.append(el("div", { class: "layer-lat" }, "no batches timed (the send path is synchronous here)"));
  }
  const chips = moveChips(s.moves);
  if (s.drops.total) {
    chips.push(el("span", { class: "chip DROP", title: Object.entries(s.drops.by_reason).map(([k, v]) => `${k}: ${v}`).join("\n") },
      `${fmtInt(s.drops.total)} dropped`));
  }
  if (chips.length) box.append(el("div", { class: "chips" }, chips));
  return box;
}

function txFrames(host) {
  const c = layerCounters(host, "nic");
  const dma = c && c.up ? c.summary.moves.DMA.by_func.find((f) => f.func === "ndo_start_xmit") : null;
  return dma ? dma.count : 0;
}

function wire(link) {
  const impair = ["loss", "corrupt", "duplicate", "reorder"].filter((k) => link[k]).map((k) => `${k} ${(link[k] * 100).toFixed(0)}%`);
  if (link.delay_ms) impair.push(`delay ${link.delay_ms} ms`);
  return el("div", { class: "link" }, el("div", { class: "wire" },
    el("span", { class: "wire-name" }, `${link.a.dev} ⟷ ${link.b.dev}`),
    el("span", { title: "frames each side's NIC transmitted" }, `→ ${fmtInt(txFrames(link.a.host))}  ← ${fmtInt(txFrames(link.b.host))} frames`),
    impair.length ? el("span", {}, impair.join(", ")) : null));
}

function renderTopology() {
  const t = state.topology;
  const root = document.getElementById("topology");
  if (!t) return;
  const row = [];
  const used = new Set();
  t.hosts.forEach((h, i) => {
    const head = el("div", { class: "host-head" }, el("span", { class: "host-name" }, `host ${h.name}`),
      h.interfaces.map((f) => el("span", { class: "host-if" },
        `${f.name} ${[f.addr, ...(f.addr6 || [])].join(" ")} · ${f.mac} · mtu ${f.mtu}`)));
    const layers = [...t.layers].reverse().map((layer) => layerBox(h.name, layer));
    row.push(el("div", { class: "host", "data-host": h.name, style: `--host-color: ${hostColor(h.name)}` }, head, layers));
    const next = t.hosts[i + 1];
    if (next) {
      const k = t.links.findIndex((lk) => (lk.a.host === h.name && lk.b.host === next.name) || (lk.b.host === h.name && lk.a.host === next.name));
      if (k >= 0) {
        used.add(k);
        const lk = t.links[k];
        row.push(wire(lk.a.host === h.name ? lk : { ...lk, a: lk.b, b: lk.a }));
      } else {
        row.push(el("div", { class: "link" }));
      }
    }
  });
  const extra = t.links.filter((_, k) => !used.has(k)).map((lk) => `${lk.a.host}:${lk.a.dev} ⟷ ${lk.b.host}:${lk.b.dev}`);
  root.replaceChildren(el("div", { class: "topology" }, row));
  root.className = "";
  if (extra.length) root.append(el("div", { class: "links-extra muted" }, "other links: ", extra.join(", ")));
}

function histogram(lat) {
  const max = Math.max(1, ...lat.buckets.map((b) => b.n));
  return el("span", { class: "hist", title: lat.buckets.map((b) => `≤ ${b.le_us === null ? "∞" : fmtUs(b.le_us)}: ${b.n}`).join("\n") },
    lat.buckets.map((b) => el("i", {
      class: b.n ? (b.le_us === null ? "over" : "") : "zero",
      style: `height: ${b.n ? Math.max(3, Math.round(22 * b.n / max)) : 1}px`,
    })));
}

function movesCell(m) {
  return m && m.count ? `${fmtInt(m.count)} · ${fmtBytes(m.bytes)}` : "–";
}

function statsRow(cls, host, layer, s, up) {
  if (!up) return el("tr", { class: cls }, el("td", {}, host), el("td", {}, layer), el("td", { colspan: 9, class: "muted" }, "not answering"));
  const lat = s.latency;
  return el("tr", { class: cls, "data-host": host, "data-layer": layer },
    el("td", {}, host), el("td", {}, el("b", {}, layer)),
    el("td", { class: "num" }, s.packets ? fmtInt(s.packets) : "–"),
    el("td", { class: "num" }, fmtUs(lat.p50_us)), el("td", { class: "num" }, fmtUs(lat.p99_us)),
    el("td", { class: "num" }, fmtUs(lat.mean_us)), el("td", {}, lat.count ? histogram(lat) : el("span", { class: "muted" }, "–")),
    el("td", { class: "num" }, movesCell(s.moves.COPY)), el("td", { class: "num" }, movesCell(s.moves.CLONE)),
    el("td", { class: "num" }, movesCell(s.moves.DMA)),
    el("td", { class: `num ${s.drops.total ? "drops" : ""}` }, s.drops.total ? fmtInt(s.drops.total) : "–"));
}

function renderStats() {
  const c = state.counters;
  if (!c || !state.topology) return;
  const layers = [...state.topology.layers].reverse();
  const head = el("thead", {}, el("tr", {}, ["host", "layer", "packets", "p50", "p99", "mean", "latency histogram 10 µs … 1 s, >1 s",
    "COPY", "CLONE", "DMA", "drops"].map((h, i) => el("th", { class: i >= 2 && i !== 6 ? "num" : "" }, h))));
  const body = el("tbody", {});
  for (const h of c.hosts) {
    body.append(el("tr", { class: "group", style: `--host-color: ${hostColor(h.name)}` }, el("td", { colspan: 11 }, `host ${h.name}`)));
    for (const layer of layers) body.append(statsRow("", h.name, layer, h.layers[layer].summary, h.layers[layer].up));
  }
  body.append(el("tr", { class: "group", style: "--host-color: var(--ink)" }, el("td", { colspan: 11 }, "all hosts")));
  for (const layer of layers) body.append(statsRow("total", "all", layer, c.totals[layer], true));
  document.getElementById("stats").replaceChildren(head, body);
}

function renderOrchestrator() {
  const c = state.counters;
  const o = (c && c.orchestrator) || {};
  const orch = o.Orchestrator || {};
  const store = o.Store || {};
  const sampling = (c && c.sampling) || {};
  const flows = (sampling.flows || []).map((f) => Object.entries(f).map(([k, v]) => `${k} ${v}`).join(" ")).join("; ");
  const items = [
    ["sampling", `${+((sampling.rate || 0) * 100).toPrecision(3)}%` + (sampling.per_second ? ` + ${sampling.per_second}/s` : "")
      + (flows ? ` + ${flows}` : "")],
    ["journeys stored", fmtInt(store.Journeys)],
    ["records collected", fmtInt(orch.RecordsCollected)],
    ["spans exported", fmtInt(orch.SpansExported)],
  ];
  if (orch.RecordsLost) items.push(["records lost", fmtInt(orch.RecordsLost)]);
  document.getElementById("orch-stats").replaceChildren(...items.map(([k, v]) => el("span", {}, `${k} `, el("b", {}, v))));
}

async function pollCounters() {
  try {
    const c = await getJson("/api/counters");
    c.at = performance.now() / 1000;
    state.prevCounters = state.counters;
    state.counters = c;
    renderTopology();
    renderStats();
    renderOrchestrator();
    const down = c.hosts.flatMap((h) => Object.entries(h.layers).filter(([, l]) => !l.up).map(([n]) => `${h.name}/${n}`));
    setStatus(true, down.length ? `live · ${down.join(", ")} not answering` : "live");
  } catch (err) {
    setStatus(false, `orchestrator unreachable: ${err.message}`);
  }
}

// -- recent packets ---------------------------------------------------------------------
function filterParams(text) {
  // "udp port=7001 10.0.0.2 dropped layer=l4": key=value pairs as /api/packets takes them; a bare
  // protocol, address, port or "dropped" as the obvious field.
  const params = new URLSearchParams();
  for (const word of text.trim().split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf("=");
    if (eq > 0) params.set(word.slice(0, eq), word.slice(eq + 1));
    else if (["udp", "tcp", "icmp", "icmp6"].includes(word.toLowerCase())) params.set("protocol", word.toLowerCase());
    else if (word === "dropped") params.set("drop_reason", "any");
    else if (/^\d+\.\d+\.\d+\.\d+$/.test(word)) params.set("addr", word);
    else if (/^[0-9a-f.]*:[0-9a-f:.]*$/i.test(word)) params.set("addr", word);  // an IPv6 address
    else if (/^\d+$/.test(word)) params.set("port", word);
    else if (word.startsWith("SKB_DROP_REASON_")) params.set("drop_reason", word);
  }
  return params;
}

function packetKey(p) { return `${p.origin_host}:${p.id}`; }

function packetRow(p) {
  const key = packetKey(p);
  const copies = p.moves.COPY.count ? `${p.moves.COPY.count} · ${fmtBytes(p.moves.COPY.bytes)}` : "–";
  return el("tr", { "data-packet": key, class: key === state.selected ? "selected" : "", onclick: () => { location.hash = `packet=${key}`; } },
    el("td", { class: "pid" }, el("span", { class: "hostdot", style: `--host-color: ${hostColor(p.origin_host)}` }, p.origin_host), ` ${p.id_hex}`),
    el("td", { class: "flow" }, p.flow || "–"),
    el("td", {}, el("span", { class: `badge ${p.outcome}` }, p.outcome),
      p.drop_reason ? el("span", { class: "reason", title: p.drop_reason }, p.drop_reason.replace("SKB_DROP_REASON_", "")) : null),
    el("td", {}, p.hosts.join(" → ")),
    el("td", { class: "num" }, p.visits), el("td", { class: "num" }, fmtNs(p.duration_ns)),
    el("td", { class: "num" }, copies), el("td", { class: "num" }, fmtAge(p.age_s)));
}

async function pollPackets(force) {
  if (document.getElementById("pause").checked && !force) return;
  const params = filterParams(state.filter);
  if (!params.has("limit")) params.set("limit", "40");
  const body = document.querySelector("#packets tbody");
  try {
    const reply = await getJson(`/api/packets?${params}`);
    body.replaceChildren(...(reply.packets.length ? reply.packets.map(packetRow)
      : [el("tr", {}, el("td", { colspan: 8, class: "muted" }, "no packets yet: send some (pktpath ping, send) — only traced ones are kept"))]));
    document.getElementById("packets-note").textContent = `${reply.packets.length} shown of ${fmtInt(reply.stored)} stored`;
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "error" }, err.message)));
  }
}

// -- one packet's journey ---------------------------------------------------------------
function parseHash() {
  const m = /packet=([^:&]+):([0-9a-fA-Fx]+)/.exec(decodeURIComponent(location.hash));
  return m ? { host: m[1], id: m[2] } : null;
}

function ticks(total) {
  return [0, 0.25, 0.5, 0.75, 1].map((f) => el("span", { style: `left: ${f * 100}%` }, fmtNs(total * f)));
}

function headTags(v) {
  // What skb->data pointed at when the layer took the packet (its exit's when it has no entry):
  // the header stack, so skb_push on the way down and skb_pull on the way up show row by row.
  const snap = v.heads.find((h) => h.at === "enter") || v.heads[0];
  if (!snap) return [];
  return snap.headers.map((h) => el("span", { class: `tag ${h.proto}`, title: h.summary },
    h.proto === "data" ? `data ${h.len}` : TAG_NAMES[h.proto] || h.proto));
}

function waterfall(j) {
  const total = Math.max(j.duration_ns, 1);
  const pct = (ns) => `${(100 * ns / total).toFixed(3)}%`;
  const rows = [el("div", { class: "wf-axis" }, el("div", { class: "wf-label" }, "host · layer · kernel function (entry → exit)"),
    el("div", { class: "wf-heads" }, "at skb->data"),
    el("div", { class: "ticks" }, ticks(total)), el("div", { class: "wf-dur" }, "time"))];
  for (const v of j.visits) {
    const marks = v.events.map((e) => el("span", {
      class: `mark ${e.kind}`, "data-kind": e.kind, style: `left: ${pct(e.t_ns)}`,
      title: `${e.kind} ${e.func} +${fmtNs(e.t_ns)}` + (e.bytes ? `, ${e.bytes} B` : "") +
        (e.copy_from ? `, ${e.copy_from} → ${e.copy_to}` : "") + (e.reason ? `, ${e.reason}` : ""),
    }));
    const funcs = v.exit_func && v.exit_func !== v.func ? `${v.func} → ${v.exit_func}` : v.func;
    rows.push(el("div", {
      class: `wf-row${v.dropped ? " dropped" : ""}`, "data-host": v.host, "data-layer": v.layer, "data-func": v.func,
      "data-visit": v.n, style: `--host-color: ${hostColor(v.host)}`, onclick: () => selectVisit(v.n),
    },
    el("div", { class: "wf-label" }, el("span", { class: "hostpill" }, v.host), el("span", { class: "lname" }, v.layer),
      el("span", { class: "func", title: funcs }, funcs)),
    el("div", { class: "wf-heads" }, headTags(v)),
    el("div", { class: "wf-track" },
      el("div", { class: "wf-bar", style: `left: ${pct(v.start_ns)}; width: ${pct(v.duration_ns)}` }), marks),
    el("div", { class: "wf-dur" }, v.dropped ? el("span", { class: "error" }, "dropped")
      : v.duration_ns ? fmtNs(v.duration_ns) : el("span", { title: "one event: an instant" }, "–"))));
  }
  return el("div", { class: "waterfall" }, rows);
}

function hexdumpNode(snap) {
  // The snapshot's bytes, 16 a line, each coloured by the header it belongs to.
  const bytes = snap.hex.match(/../g) || [];
  const owner = new Array(bytes.length).fill("data");
  for (const h of snap.headers) for (let i = h.offset; i < Math.min(bytes.length, h.offset + h.len); i++) owner[i] = h.proto;
  const lines = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const line = [el("span", { class: "off" }, off.toString(16).padStart(4, "0")), "  "];
    let text = "";
    for (let i = off; i < off + 16; i++) {
      if (i < bytes.length) {
        line.push(el("span", { class: `b-${owner[i]}` }, bytes[i]), i === off + 7 ? "  " : " ");
        const b = parseInt(bytes[i], 16);
        text += b >= 32 && b < 127 ? String.fromCharCode(b) : ".";
      } else {
        line.push(i === off + 7 ? "    " : "   ");
      }
    }
    line.push(` |${text}|\n`);
    lines.push(...line);
  }
  return el("pre", { class: "hexdump" }, lines);
}

const HEAD_NAMES = { l4: "transport", eth: "Ethernet", ip: "IP", data: "payload" };

function snapshotNode(snap) {
  return el("div", { class: "snap", "data-at": snap.at },
    el("div", { class: "snap-title" }, `at ${snap.at === "enter" ? "entry" : "exit"}: `, el("b", {}, snap.func),
      ` · skb->len ${snap.len} · skb->data at the ${HEAD_NAMES[snap.head_type] || snap.head_type} header`),
    snap.headers.map((h) => el("div", { class: `hdr ${h.proto}`, "data-proto": h.proto },
      el("div", { class: "hdr-sum" }, h.summary),
      h.fields.length ? el("div", { class: "fields" }, h.fields.map(([k, v]) => el("span", { title: `${k} ${v}` }, el("span", { class: "k" }, k), " ", v))) : null)),
    snap.hex ? el("details", { class: "hex", open: "" }, el("summary", {}, `the first ${snap.hex.length / 2} bytes at skb->data`), hexdumpNode(snap)) : null);
}

function eventNode(e) {
  let detail = "";
  if (e.kind === "COPY") detail = `${e.bytes} B  ${e.copy_from} → ${e.copy_to}`;
  else if (e.kind === "DROP") detail = e.reason;
  else if (e.bytes) detail = `${e.bytes} B`;
  return el("li", { "data-kind": e.kind }, el("span", { class: `kind ${e.kind}` }, e.kind),
    el("span", { class: "func" }, e.func), el("span", { class: e.kind === "DROP" ? "error" : "" }, detail),
    el("span", { class: "muted" }, `+${fmtNs(e.t_ns)}`));
}

function visitDetail(v) {
  const funcs = v.exit_func && v.exit_func !== v.func ? `${v.func} → ${v.exit_func}` : v.func;
  const lens = v.exit_len !== null && v.exit_len !== undefined ? `skb->len ${v.len} → ${v.exit_len}` : `skb->len ${v.len}`;
  return el("div", {
    class: `visit${v.dropped ? " dropped" : ""}`, id: `visit-${v.n}`, "data-host": v.host, "data-layer": v.layer,
    style: `--host-color: ${hostColor(v.host)}`,
  },
  el("div", { class: "visit-head" },
    el("span", { class: "visit-title" }, `host ${v.host} · ${v.layer}  `, el("span", { class: "func" }, funcs)),
    el("span", { class: "visit-when" }, `from +${fmtNs(v.start_ns)} for ${fmtNs(v.duration_ns)} · ${lens}`)),
  v.events.length ? el("ul", { class: "events" }, v.events.map(eventNode))
    : el("p", { class: "muted small" }, "no copy, clone, DMA, drop or free here: the layer handed the skb on as it was"),
  v.heads.length ? el("div", { class: "snaps" }, v.heads.map(snapshotNode))
    : el("p", { class: "muted small" }, "no header snapshot: this layer records no entry or exit for the packet"));
}

function selectVisit(n) {
  const j = state.journey;
  const v = j && j.visits.find((x) => x.n === n);
  if (!v) return;
  state.visit = n;
  document.querySelectorAll(".wf-row").forEach((x) => x.classList.toggle("active", Number(x.dataset.visit) === n));
  document.getElementById("visit-detail").replaceChildren(visitDetail(v));
}

function defaultVisit(j) {
  // The drop when there is one; else the first visit that saw whole frames (the headers all there).
  const pick = j.visits.find((v) => v.dropped)
    || j.visits.find((v) => v.heads.some((h) => h.at === "enter" && h.head_type === "eth"))
    || j.visits.find((v) => v.heads.length) || j.visits[0];
  return pick ? pick.n : null;
}

function totalsText(m) {
  return ["COPY", "CLONE", "DMA"].map((k) => `${m[k].count} ${k}${m[k].count ? ` (${fmtBytes(m[k].bytes)})` : ""}`).join(" · ");
}

function packetLink(host, id) {
  return el("a", { href: `#packet=${host}:${id}` }, `${host}:0x${BigInt(id).toString(16)}`);
}

function renderJourney(j) {
  const panel = document.getElementById("journey");
  panel.hidden = false;
  document.getElementById("journey-title").replaceChildren(
    `Packet ${j.origin_host}:${j.id_hex}`, el("span", { class: "flow" }, j.flow || ""), " ",
    el("span", { class: `badge ${j.outcome}` }, j.outcome + (j.drop_reason ? `: ${j.drop_reason}` : "")));
  const meta = el("div", { class: "meta" },
    el("span", {}, "path ", el("b", {}, j.hosts.join(" → "))),
    el("span", {}, "time ", el("b", {}, fmtNs(j.duration_ns))),
    el("span", {}, "layer visits ", el("b", {}, j.visit_count)),
    el("span", {}, "moves ", el("b", {}, totalsText(j.moves))),
    j.clone_of ? el("span", {}, "clone of ", packetLink(j.origin_host, j.clone_of)) : null,
    j.copy_of ? el("span", {}, "copy of ", packetLink(j.origin_host, j.copy_of)) : null,
    el("span", {}, "trace id ", el("b", { class: "mono" }, j.trace_id)));
  const legend = el("div", { class: "legend" }, el("span", {}, "each bar: the packet's time in one layer of one host; marks:"),
    KINDS.map((k) => el("span", {}, el("i", { class: `mark ${k}` }), k)));
  const keep = state.journey && state.journey.id === j.id && j.visits.some((v) => v.n === state.visit);
  state.journey = j;
  document.getElementById("journey-body").replaceChildren(meta, legend, waterfall(j),
    el("div", { class: "detail-head" }, "the selected layer visit (click a row above): its events and the sk_buff's headers"),
    el("div", { id: "visit-detail" }));
  const n = keep ? state.visit : defaultVisit(j);
  if (n !== null) selectVisit(n);
  document.body.dataset.journey = `${j.origin_host}:${j.id}`;
}

async function loadJourney() {
  const want = parseHash();
  const panel = document.getElementById("journey");
  if (!want) {
    panel.hidden = true;
    state.selected = null;
    state.journeyKey = state.journeyJson = "";
    delete document.body.dataset.journey;
    return;
  }
  const key = `${want.host}:${want.id}`;
  try {
    const text = await (await fetch(`/api/packet?host=${encodeURIComponent(want.host)}&id=${encodeURIComponent(want.id)}`, { cache: "no-store" })).text();
    if (key === state.journeyKey && text === state.journeyJson) return; // unchanged: keep what is open
    const j = JSON.parse(text);
    state.journeyKey = key;
    state.journeyJson = text;
    if (j.error) throw new Error(j.error);
    state.selected = `${j.origin_host}:${j.id}`;
    renderJourney(j);
  } catch (err) {
    panel.hidden = false;
    document.getElementById("journey-title").textContent = `Packet ${key}`;
    document.getElementById("journey-body").replaceChildren(el("p", { class: "error" }, err.message));
    document.body.dataset.journey = "missing";
  }
  document.querySelectorAll("#packets tbody tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.packet === state.selected));
}

// -- start ------------------------------------------------------------------------------
async function start() {
  document.getElementById("filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.filter = document.getElementById("filter-text").value;
    pollPackets(true);
  });
  document.getElementById("journey-close").addEventListener("click", () => { history.pushState("", "", location.pathname); loadJourney(); });
  window.addEventListener("hashchange", () => { loadJourney(); document.getElementById("journey").scrollIntoView({ block: "start" }); });
  try {
    state.topology = await getJson("/api/topology");
    state.topology.hosts.forEach((h, i) => { state.hostIndex[h.name] = i; });
    renderTopology();
  } catch (err) {
    setStatus(false, `orchestrator unreachable: ${err.message}`);
  }
  await Promise.all([loadJourney(), pollCounters(), pollPackets(true)]);
  setInterval(pollCounters, COUNTERS_MS);
  setInterval(pollPackets, PACKETS_MS);
  setInterval(() => { if (parseHash()) loadJourney(); }, JOURNEY_MS);
}

start();
