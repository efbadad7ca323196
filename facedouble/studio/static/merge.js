// Merge tuning: scrub the target, preview the current frame with the panel's settings (a marked preview from
// the server), a before/after wipe, keys copied forward and ranges, saved as the overrides file merge reads.
import { el, getJSON, postJSON, message, typing } from "./api.js";
import { progressCell } from "./workspace_progress.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const status = $("status"), plate = $("plate"), swap = $("swap"), slider = $("frame");
const FIELDS = {
  mask: ["hull", "mesh", "learned", "hull*learned", "mesh*learned"],
  colour: ["rct", "lct", "mkl", "idt", "sot", "none"],
  blend: ["alpha", "poisson"],
  erode: [-20, 20, 0.5], blur: [0, 30, 0.5], sharpen: [0, 3, 0.1], scale: [0.8, 1.2, 0.01],
};
// ranges of settings shown when the shot's defaults have them; the menus' values come from the server
// (shot.choices: merge's registries) and any other setting it lists gets a plain field, so the panel always
// offers every per-frame setting merge reads
const OPTIONAL = { edge_match: [0, 50, 1] };
let model = params.get("model"), faceset = params.get("faceset"), shot = null, keys = [], ranges = [];
let timer = null, seq = 0;

function buildPanel(defaults, choices) {
  for (const [name, values] of Object.entries(choices || {})) FIELDS[name] = values;
  for (const [name, value] of Object.entries(defaults)) {
    if (!(name in FIELDS)) FIELDS[name] = OPTIONAL[name] || (typeof value === "number" ? [null, null, "any"] : "text");
  }
  for (const name of Object.keys(FIELDS)) if (!(name in defaults)) delete FIELDS[name];  // not in this merge
  const box = $("settings");
  for (const [name, spec] of Object.entries(FIELDS)) {
    let input;
    if (spec === "text") {
      input = el("input", { id: "s_" + name, type: "text", class: "n" });
    } else if (typeof spec[0] === "string") {
      input = el("select", { id: "s_" + name });
      for (const v of spec) input.append(new Option(v, v));
    } else {
      input = el("input", { id: "s_" + name, type: "number", step: String(spec[2]), class: "n" });
      if (spec[0] !== null) { input.min = String(spec[0]); input.max = String(spec[1]); }
    }
    input.addEventListener("change", schedule);
    box.append(el("label", {}, name.replaceAll("_", " ") + " ", input));
  }
}
function panel() {
  const out = {};
  for (const [name, spec] of Object.entries(FIELDS)) {
    const v = $("s_" + name).value;
    out[name] = spec === "text" || typeof spec[0] === "string" ? v : Number(v);
  }
  return out;
}
function setPanel(s) { for (const name of Object.keys(FIELDS)) if (s[name] !== undefined) $("s_" + name).value = s[name]; }
const frame = () => Number(slider.value);

function schedule() { clearTimeout(timer); timer = setTimeout(render, 150); }
async function render() {
  if (!shot) return;
  const f = frame(), mine = ++seq;
  $("frameno").textContent = `${f} / ${shot.frames - 1}`;
  plate.src = "/api/merge/plate?" + new URLSearchParams({ model, faceset, frame: f });
  const url = "/api/merge/preview?" + new URLSearchParams({ model, faceset, frame: f, ...panel() });
  status.textContent = "rendering...";
  const t = performance.now();
  const r = await fetch(url, { credentials: "same-origin" });
  if (mine !== seq) return;
  if (!r.ok) { status.textContent = message(new Error(await r.text())); swap.removeAttribute("src"); return; }
  const blob = await r.blob();
  if (swap.src.startsWith("blob:")) URL.revokeObjectURL(swap.src);
  swap.src = URL.createObjectURL(blob);
  swap.dataset.frame = String(f);
  swap.dataset.settings = JSON.stringify(panel());
  status.textContent = `frame ${f} in ${Math.round(performance.now() - t)} ms`;
}

async function scrubTo(f) {
  slider.value = String(Math.max(0, Math.min(shot.frames - 1, f)));
  setPanel(await settingsAt(frame()));
  schedule();
}
// the settings a frame gets from the (unsaved) keys and ranges: defaults, the last key at or before it, ranges
async function settingsAt(f) {
  let s = { ...shot.defaults };
  const before = keys.filter((k) => k.frame <= f).sort((a, b) => a.frame - b.frame).pop();
  if (before) s = { ...s, ...before.settings };
  for (const r of ranges) {
    const [a, b] = r.frames.split("-");
    const lo = Number(a), hi = b === undefined ? lo : b === "" ? Infinity : Number(b);
    if (f >= lo && f <= hi) s = { ...s, ...r.settings };
  }
  return s;
}

// what a rule changes from the defaults, e.g. "colour none, erode 2"
const diff = (s) => Object.entries(s).filter(([k, v]) => shot.defaults[k] !== v).map(([k, v]) => `${k} ${v}`)
  .join(", ") || "defaults";

function listRules() {
  const items = [...keys].sort((a, b) => a.frame - b.frame).map((k) => el("li", {},
    el("a", { href: "#", onclick: (e) => { e.preventDefault(); scrubTo(k.frame); } }, `key ${k.frame}`),
    `: ${diff(k.settings)}`));
  ranges.forEach((r, i) => items.push(el("li", {}, `range ${r.frames}: ${diff(r.settings)} `,
    el("button", { onclick: () => { ranges.splice(i, 1); listRules(); } }, "x"))));
  $("rules").replaceChildren(...items);
  $("rules").dataset.count = String(items.length);
}

$("key").addEventListener("click", () => {
  keys = keys.filter((k) => k.frame !== frame());
  keys.push({ frame: frame(), settings: panel() });
  listRules();
});
$("delkey").addEventListener("click", () => { keys = keys.filter((k) => k.frame !== frame()); listRules(); });
$("range").addEventListener("click", () => {
  const a = $("rfrom").value, b = $("rto").value;
  if (a === "") return;
  ranges.push({ frames: b === "" ? a : `${a}-${b}`, settings: panel() });
  listRules();
});
$("save").addEventListener("click", async () => {
  try {
    const res = await postJSON("/api/merge/session", { faceset, keys, ranges });
    $("saved").textContent = `saved ${res.rules.length} rule(s) to ${res.overrides}`;
    $("saved").dataset.path = res.overrides;
  } catch (err) { $("saved").textContent = message(err); }
});
$("render").addEventListener("click", async () => {
  try {
    const session = await getJSON("/api/merge/session?" + new URLSearchParams({ faceset }));
    const body = { kind: "merge", model, faceset, out: $("out").value };
    if (session.overrides) body.overrides = session.overrides;
    const j = await postJSON("/api/jobs", body);
    $("renderinfo").textContent = `render job ${j.id} ${j.state}`;
    watch(j.id);
  } catch (err) { $("renderinfo").textContent = message(err); }
});
async function watch(id) {
  const j = await getJSON(`/api/jobs/${id}`);
  $("renderinfo").replaceChildren(`render job ${j.id} ${j.state} `, progressCell(j));
  if (j.state === "queued" || j.state === "running") setTimeout(() => watch(id), 1000);
}

slider.addEventListener("input", () => { $("frameno").textContent = String(frame()); });
slider.addEventListener("change", () => scrubTo(frame()));
$("wipe").addEventListener("input", () => {
  const w = Number($("wipe").value);
  swap.style.clipPath = `inset(0 ${100 - w}% 0 0)`;  // preview on the left of the line, plate on the right
  $("wipeline").style.left = `${w}%`;
  $("wipeline").hidden = w >= 100;
});
document.addEventListener("keydown", (ev) => {
  if (!shot || typing(ev.target)) return;
  const step = ev.shiftKey ? 10 : 1;
  if (ev.key === "ArrowRight") { ev.preventDefault(); scrubTo(frame() + step); }
  if (ev.key === "ArrowLeft") { ev.preventDefault(); scrubTo(frame() - step); }
});

async function init() {
  const ws = await getJSON("/api/workspace");
  for (const m of ws.model_dirs) $("model").append(new Option(m, m));
  for (const f of ws.facesets) $("faceset").append(new Option(f.path, f.path));
  model = model || ws.model_dirs[0];
  faceset = faceset || (ws.facesets[0] && ws.facesets[0].path);
  if (!model || !faceset) { status.textContent = "needs a trained model and a target faceset"; return; }
  $("model").value = model; $("faceset").value = faceset;
  for (const id of ["model", "faceset"]) $(id).addEventListener("change", () => {
    location.href = "/merge?" + new URLSearchParams({ model: $("model").value, faceset: $("faceset").value });
  });
  shot = await getJSON("/api/merge/shot?" + new URLSearchParams({ model, faceset }));
  buildPanel(shot.defaults, shot.choices);
  slider.max = String(shot.frames - 1);
  const session = await getJSON("/api/merge/session?" + new URLSearchParams({ faceset }));
  keys = session.keys || []; ranges = session.ranges || [];
  listRules();
  document.body.dataset.ready = "1";
  await scrubTo(Number(params.get("frame") || 0));
}
init().catch((err) => { status.textContent = message(err); });
