// Mask editor: include/exclude polygons on an aligned face, in face pixels, saved into the face's metadata
// (the labels schema of `facedouble mask label import`). Keyboard layout after DeepFaceLab's XSeg editor.
import { getJSON, postJSON, message, typing } from "./api.js";

const params = new URLSearchParams(location.search);
const canvas = document.getElementById("canvas"), ctx = canvas.getContext("2d");
const faceImg = document.getElementById("face"), predImg = document.getElementById("pred");
const status = document.getElementById("status"), pos = document.getElementById("pos");
const facesetSel = document.getElementById("faceset"), showPred = document.getElementById("showpred");
const HIT = 7; // px on screen
let faceset = params.get("faceset"), info = null, polys = [], open = null, mode = "include", selected = -1;
let undoStack = [], redoStack = [], dirty = false, drag = null;

const scale = () => canvas.width / (info ? info.size : 1);
const snapshot = () => JSON.stringify({ polys, open });
function push() { undoStack.push(snapshot()); if (undoStack.length > 200) undoStack.shift(); redoStack = []; dirty = true; }
function restore(s) { const v = JSON.parse(s); polys = v.polys; open = v.open; selected = -1; dirty = true; draw(); }

function fromLabels(labels) {
  const out = [];
  if (!labels) return out;
  for (const p of labels.include || []) out.push({ type: "include", pts: p.map((q) => [...q]) });
  for (const p of labels.exclude || []) out.push({ type: "exclude", pts: p.map((q) => [...q]) });
  return out;
}
function toLabels() {
  const closed = polys.filter((p) => p.pts.length >= 3);
  if (!closed.length) return null;
  const r = (v) => Math.round(v * 100) / 100;
  const pick = (t) => closed.filter((p) => p.type === t).map((p) => p.pts.map(([x, y]) => [r(x), r(y)]));
  return { include: pick("include"), exclude: pick("exclude") };
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const s = scale();
  const all = open ? [...polys, open] : polys;
  all.forEach((p, i) => {
    if (!p.pts.length) return;
    const colour = p.type === "include" ? "0,220,90" : "240,60,60";
    ctx.beginPath();
    p.pts.forEach(([x, y], k) => (k ? ctx.lineTo(x * s, y * s) : ctx.moveTo(x * s, y * s)));
    if (p !== open) { ctx.closePath(); ctx.fillStyle = `rgba(${colour},0.22)`; ctx.fill(); }
    ctx.lineWidth = i === selected ? 3 : 1.5;
    ctx.strokeStyle = `rgb(${colour})`;
    ctx.stroke();
    ctx.fillStyle = "#fff";
    for (const [x, y] of p.pts) ctx.fillRect(x * s - 3, y * s - 3, 6, 6);
  });
  canvas.dataset.polygons = String(polys.filter((p) => p.pts.length >= 3).length);
  canvas.dataset.open = open ? String(open.pts.length) : "0";
  document.getElementById("inc").classList.toggle("on", mode === "include");
  document.getElementById("exc").classList.toggle("on", mode === "exclude");
  pos.textContent = info ? `${info.name}  ${info.index + 1}/${info.total}  ${dirty ? "(unsaved)" : ""}` : "";
}

function at(ev) {
  const r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
}
function nearPoint(px, py) {
  const s = scale();
  for (let i = polys.length - 1; i >= 0; i--) {
    const k = polys[i].pts.findIndex(([x, y]) => Math.hypot(x * s - px, y * s - py) < HIT);
    if (k >= 0) return [i, k];
  }
  return null;
}
function nearEdge(px, py) {
  const s = scale();
  for (let i = polys.length - 1; i >= 0; i--) {
    const pts = polys[i].pts;
    for (let k = 0; k < pts.length; k++) {
      const [ax, ay] = pts[k].map((v) => v * s), [bx, by] = pts[(k + 1) % pts.length].map((v) => v * s);
      const L = Math.hypot(bx - ax, by - ay) || 1;
      const t = Math.max(0, Math.min(1, ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / (L * L)));
      if (Math.hypot(ax + t * (bx - ax) - px, ay + t * (by - ay) - py) < HIT) return [i, k + 1];
    }
  }
  return null;
}
function inside(pts, x, y) {
  let hit = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i], [xj, yj] = pts[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function closeOpen() {
  if (!open) return;
  push();
  if (open.pts.length >= 3) { polys.push(open); selected = polys.length - 1; }
  open = null;
  draw();
}

canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
canvas.addEventListener("mousedown", (ev) => {
  if (!info) return;
  const [px, py] = at(ev), s = scale();
  if (ev.button === 2) { // delete a point
    const hit = nearPoint(px, py);
    if (hit) {
      push();
      polys[hit[0]].pts.splice(hit[1], 1);
      if (polys[hit[0]].pts.length < 3) polys.splice(hit[0], 1);
      selected = -1;
      draw();
    }
    return;
  }
  if (open) {
    const [fx, fy] = open.pts[0];
    if (open.pts.length >= 3 && Math.hypot(fx * s - px, fy * s - py) < HIT) return closeOpen();
    push();
    open.pts.push([px / s, py / s]);
    return draw();
  }
  const hit = nearPoint(px, py);
  if (hit) { push(); drag = hit; selected = hit[0]; return draw(); }
  if (ev.ctrlKey || ev.metaKey) {
    const edge = nearEdge(px, py);
    if (edge) { push(); polys[edge[0]].pts.splice(edge[1], 0, [px / s, py / s]); selected = edge[0]; return draw(); }
  }
  const under = polys.findIndex((p) => inside(p.pts, px / s, py / s));
  if (under >= 0 && ev.shiftKey) { selected = under; return draw(); }
  push();
  open = { type: mode, pts: [[px / s, py / s]] };
  draw();
});
canvas.addEventListener("mousemove", (ev) => {
  if (!drag) return;
  const [px, py] = at(ev), s = scale();
  polys[drag[0]].pts[drag[1]] = [px / s, py / s];
  draw();
});
window.addEventListener("mouseup", () => { drag = null; });

async function save() {
  closeOpen();
  try {
    const res = await postJSON("/api/mask/labels", { faceset, name: info.name, labels: toLabels() });
    dirty = false;
    status.textContent = `saved ${info.name}` + (res.labels ? "" : " (no labels)");
    info.labels = res.labels;
  } catch (err) { status.textContent = message(err); throw err; }
  draw();
}

async function load(name) {
  info = await getJSON("/api/mask/face?" + new URLSearchParams({ faceset, name }));
  polys = fromLabels(info.labels); open = null; selected = -1; undoStack = []; redoStack = []; dirty = false;
  faceImg.src = "/api/faceset/face?" + new URLSearchParams({ faceset, name });
  document.getElementById("predinfo").textContent = info.predicted ? "" : "(none: run apply)";
  predImg.hidden = !(showPred.checked && info.predicted);
  if (info.predicted) predImg.src = "/api/mask/predicted?" + new URLSearchParams({ faceset, name });
  history.replaceState(null, "", "/mask?" + new URLSearchParams({ faceset, name }));
  status.textContent = "";
  draw();
}

async function go(which) {
  if (!info || !info[which]) { status.textContent = "no such face"; return; }
  if (dirty) await save();
  await load(info[which]);
}

async function copyPrevious() {
  if (!info.prev) return;
  const prev = await getJSON("/api/mask/face?" + new URLSearchParams({ faceset, name: info.prev }));
  if (!prev.labels) { status.textContent = "the previous face has no labels"; return; }
  push();
  polys = fromLabels(prev.labels);
  status.textContent = "copied the labels of " + prev.name;
  draw();
}

function undo() { if (undoStack.length) { redoStack.push(snapshot()); restore(undoStack.pop()); } }
function redo() { if (redoStack.length) { undoStack.push(snapshot()); restore(redoStack.pop()); } }
function deleteSelected() {
  if (open) { push(); open = null; return draw(); }
  if (selected >= 0) { push(); polys.splice(selected, 1); selected = -1; draw(); }
}
function setMode(m) { mode = m; if (open) open.type = m; draw(); }

const on = (id, fn) => document.getElementById(id).addEventListener("click", fn);
on("inc", () => setMode("include")); on("exc", () => setMode("exclude"));
on("undo", undo); on("redo", redo); on("del", deleteSelected); on("copy", copyPrevious);
on("clear", () => { push(); polys = []; open = null; draw(); });
on("prev", () => go("prev")); on("next", () => go("next"));
on("prevu", () => go("prev_unlabelled")); on("nextu", () => go("next_unlabelled"));
on("save", save);
showPred.addEventListener("change", () => { predImg.hidden = !(showPred.checked && info && info.predicted); });

async function job(kind) {
  const model = document.getElementById("maskmodel").value;
  const body = kind === "mask-train"
    ? { kind, faceset, model, max_iters: Number(document.getElementById("maskiters").value) || undefined }
    : { kind, faceset, model };
  try {
    const j = await postJSON("/api/jobs", body);
    document.getElementById("jobinfo").textContent = `${kind} job ${j.id} ${j.state}`;
  } catch (err) { document.getElementById("jobinfo").textContent = message(err); }
}
on("mtrain", () => job("mask-train")); on("mapply", () => job("mask-apply"));

document.addEventListener("keydown", (ev) => {
  if (typing(ev.target)) return;
  const k = ev.key.toLowerCase(), ctrl = ev.ctrlKey || ev.metaKey;
  if (ctrl && k === "z") { ev.preventDefault(); return ev.shiftKey ? redo() : undo(); }
  if (ctrl && k === "y") { ev.preventDefault(); return redo(); }
  if (ctrl) return;
  if (k === "q") setMode("include");
  else if (k === "w") setMode("exclude");
  else if (k === "enter") closeOpen();
  else if (k === "escape") { if (open) { push(); open = null; draw(); } }
  else if (k === "delete" || k === "backspace") deleteSelected();
  else if (k === "c") copyPrevious();
  else if (k === "s") save();
  else if (k === "5") { showPred.checked = !showPred.checked; showPred.dispatchEvent(new Event("change")); }
  else if (k === "a") go(ev.shiftKey ? "prev_unlabelled" : "prev");
  else if (k === "d") go(ev.shiftKey ? "next_unlabelled" : "next");
});

async function start() {
  const ws = await getJSON("/api/workspace");
  for (const f of ws.facesets) facesetSel.append(new Option(f.path, f.path));
  if (!faceset && ws.facesets.length) faceset = ws.facesets[0].path;
  facesetSel.value = faceset;
  facesetSel.addEventListener("change", () => { location.href = "/mask?faceset=" + encodeURIComponent(facesetSel.value); });
  if (!faceset) { status.textContent = "no facesets in this workspace"; return; }
  const list = await getJSON("/api/mask/faces?" + new URLSearchParams({ faceset }));
  if (!list.faces.length) { status.textContent = "this faceset has no faces"; return; }
  const wanted = params.get("name");
  const first = list.faces.find((f) => f.name === wanted) || list.faces.find((f) => !f.labelled) || list.faces[0];
  await load(first.name);
  document.body.dataset.ready = "1";
}
start().catch((err) => { status.textContent = message(err); });
