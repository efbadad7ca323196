// Virtualised faceset grid: only the rows in view (plus one above and below) exist in the DOM; faces are
// fetched a page at a time and thumbnails come from the server's cache, so 10,000 faces scroll like 100.
// Landmark and mask overlays are drawn into the thumbnails by the server; a double-click opens the face panel
// (metadata, overlays, the source frame it was cut from). A metric sort not scored yet is scored by the server
// in the background: the grid stays in name order with a progress bar and re-sorts when it is done.
import { getJSON, postJSON, message } from "./api.js";

const CELL = 112, PAGE = 200;
const params = new URLSearchParams(location.search);
const faceset = params.get("faceset");
const $ = (id) => document.getElementById(id);
const grid = $("grid"), spacer = $("spacer"), sortSel = $("sort"), rejBox = $("rejected");
const act = $("act"), status = $("status"), bar = $("scoring"), panel = $("face");
let total = 0, pages = new Map(), selected = new Set(), lastClicked = -1, generation = 0;
let scoring = null, refreshTimer = null, openName = null;
$("title").textContent = faceset;

function overlay() {
  return ["mask", "landmarks"].filter((n) => $("ov_" + n).checked).join(",");
}
function thumbURL(name) {
  const q = new URLSearchParams({ faceset, name });
  if (overlay()) q.set("overlay", overlay());
  return "/api/faceset/thumb?" + q;
}

function query(offset) {
  const q = new URLSearchParams({ faceset, offset, limit: PAGE });
  if (sortSel.value) q.set("sort", sortSel.value);
  if (rejBox.checked) q.set("rejected", "true");
  return "/api/faceset/page?" + q;
}

async function loadPage(p) {
  if (pages.has(p)) return pages.get(p);
  const gen = generation;
  const promise = getJSON(query(p * PAGE)).then((data) => {
    if (gen !== generation) return data;
    total = data.total;
    if (sortSel.options.length === 1) for (const m of data.metrics) sortSel.append(new Option(m, m));
    showScoring(data.scoring);
    if (data.scoring) refreshSoon(data.poll_s);
    return data;
  }, (err) => {
    pages.delete(p);
    if (gen === generation) {  // e.g. a metric the faceset cannot be scored by: back to name order
      status.textContent = message(err);
      showScoring(null);
      if (sortSel.value) { sortSel.value = ""; setTimeout(refresh, 0); }
    }
    return { faces: [], total };
  });
  pages.set(p, promise);
  return promise;
}

function showScoring(s) {
  scoring = s;
  bar.hidden = !s;
  grid.dataset.scoring = s ? "1" : "";
  if (s) { bar.max = Math.max(1, s.total); bar.value = s.done; }
}
// ask again while the server scores: pages are dropped and the visible ones fetched again (sorted once done)
function refreshSoon(seconds) {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, (seconds || 0.5) * 1000);
}
function refresh() { generation++; pages = new Map(); render(); }

function columns() { return Math.max(1, Math.floor(grid.clientWidth / CELL)); }

async function render() {
  const cols = columns();
  const first = Math.max(0, Math.floor(grid.scrollTop / CELL) - 1);
  await loadPage(Math.floor(first * cols / PAGE));  // the total, before the rows are counted
  spacer.style.height = Math.ceil(total / cols) * CELL + "px";
  const last = Math.min(Math.ceil(total / cols), Math.ceil((grid.scrollTop + grid.clientHeight) / CELL) + 1);
  const lo = first * cols, hi = Math.min(total, last * cols);
  const needed = new Set();
  for (let i = lo; i < hi; i++) needed.add(Math.floor(i / PAGE));
  const loaded = new Map();
  for (const p of needed) loaded.set(p, await loadPage(p));
  const cells = [];
  for (let i = lo; i < hi; i++) {
    const face = loaded.get(Math.floor(i / PAGE)).faces[i % PAGE];
    if (!face) continue;
    const div = document.createElement("div");
    div.className = "cell" + (selected.has(face.name) ? " selected" : "") + (face.name === openName ? " open" : "");
    div.dataset.name = face.name;
    div.dataset.index = i;
    div.style.cssText = `left:${(i % cols) * CELL}px;top:${Math.floor(i / cols) * CELL}px;width:${CELL}px;height:${CELL}px`;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = face.name;
    img.title = face.name + " (double-click: details and source frame)";
    img.src = thumbURL(face.name);
    div.append(img);
    if (face.value !== undefined) {
      const v = document.createElement("span");
      v.className = "v";
      v.textContent = face.value;
      div.append(v);
    }
    cells.push(div);
  }
  spacer.replaceChildren(...cells);
  const sorting = scoring ? ` - scoring ${scoring.metric}: ${scoring.done} / ${scoring.total}, shown by name until done` : "";
  status.textContent = `${total} faces, ${selected.size} selected${sorting}`;
}

spacer.addEventListener("click", async (ev) => {
  const cell = ev.target.closest(".cell");
  if (!cell) return;
  const i = Number(cell.dataset.index);
  if (ev.shiftKey && lastClicked >= 0) {  // range select across pages
    const [a, b] = [Math.min(i, lastClicked), Math.max(i, lastClicked)];
    for (let k = a; k <= b; k++) {
      const face = (await loadPage(Math.floor(k / PAGE))).faces[k % PAGE];
      if (face) selected.add(face.name);
    }
  } else if (selected.has(cell.dataset.name)) selected.delete(cell.dataset.name);
  else selected.add(cell.dataset.name);
  lastClicked = i;
  paintSelection();
});
// the cells stay (a rebuilt cell would swallow the second click of a double-click): only their classes change
function paintSelection() {
  for (const c of spacer.children) c.classList.toggle("selected", selected.has(c.dataset.name));
  status.textContent = status.textContent.replace(/\d+ selected/, `${selected.size} selected`);
}
spacer.addEventListener("dblclick", (ev) => {
  const cell = ev.target.closest(".cell");
  if (cell) openFace(cell.dataset.name);
});

// the face panel: the face with the overlays, its metadata and the source frame with its box
async function openFace(name) {
  openName = name;
  panel.hidden = false;
  grid.classList.add("narrow");
  $("fname").textContent = name;
  const big = new URLSearchParams({ faceset, name });
  $("fimg").src = "/api/faceset/thumb?" + new URLSearchParams({ faceset, name, overlay: overlay() || "mask,landmarks",
    size: 256 });
  $("fmask").href = "/mask?" + new URLSearchParams({ faceset, name });
  $("fmask").hidden = name.includes("/");  // a rejected face is restored before it is labelled
  try {
    const info = await getJSON("/api/faceset/info?" + big);
    $("finfo").replaceChildren(...Object.entries(info).map(([k, v]) => {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("th"), { textContent: k }),
        Object.assign(document.createElement("td"), { textContent: String(v) }));
      return tr;
    }));
  } catch (err) { $("finfo").replaceChildren(); $("fsrcinfo").textContent = message(err); }
  const r = await fetch("/api/faceset/source?" + big, { credentials: "same-origin" });
  if (openName !== name) return;
  if (r.ok) {
    if ($("fsrc").src.startsWith("blob:")) URL.revokeObjectURL($("fsrc").src);
    $("fsrc").src = URL.createObjectURL(await r.blob());
    $("fsrc").hidden = false;
    $("fsrcinfo").textContent = `${r.headers.get("X-Clip")}, frame ${r.headers.get("X-Frame")}`;
    panel.dataset.frame = r.headers.get("X-Frame");
  } else {
    $("fsrc").hidden = true;
    $("fsrcinfo").textContent = message(new Error(await r.text()));
    panel.dataset.frame = "";
  }
  render();
}
function closeFace() { openName = null; panel.hidden = true; grid.classList.remove("narrow"); render(); }
$("fclose").addEventListener("click", closeFace);

function reset() { generation++; pages = new Map(); selected.clear(); lastClicked = -1; grid.scrollTop = 0; start(); }

act.addEventListener("click", async () => {
  if (!selected.size) return;
  const url = rejBox.checked ? "/api/faceset/restore" : "/api/faceset/reject";
  try {
    const res = await postJSON(url, { faceset, names: [...selected] });
    if (openName && selected.has(openName)) closeFace();
    reset();
    status.textContent = `moved ${res.moved.length}`;
  } catch (err) { status.textContent = message(err); }
});
sortSel.addEventListener("change", reset);
rejBox.addEventListener("change", () => { act.textContent = rejBox.checked ? "restore selected" : "reject selected"; reset(); });
for (const n of ["mask", "landmarks"]) $("ov_" + n).addEventListener("change", render);
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Delete" && !rejBox.checked) act.click();
  if (ev.key === "Escape" && openName) closeFace();
});
grid.addEventListener("scroll", () => requestAnimationFrame(render));
window.addEventListener("resize", render);

async function start() { await render(); document.body.dataset.ready = "1"; }
start();
