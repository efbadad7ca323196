// Virtualised faceset grid: only the rows in view (plus one above and below) exist in the DOM; faces are
// fetched a page at a time and thumbnails come from the server's cache, so 10,000 faces scroll like 100.
import { getJSON, postJSON } from "./api.js";

const CELL = 112, PAGE = 200;
const params = new URLSearchParams(location.search);
const faceset = params.get("faceset");
const grid = document.getElementById("grid"), spacer = document.getElementById("spacer");
const sortSel = document.getElementById("sort"), rejBox = document.getElementById("rejected");
const act = document.getElementById("act"), status = document.getElementById("status");
let total = 0, pages = new Map(), selected = new Set(), lastClicked = -1, generation = 0;
document.getElementById("title").textContent = faceset;

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
    if (!sortSel.options.length || sortSel.options.length === 1) {
      for (const m of data.metrics) sortSel.append(new Option(m, m));
    }
    return data;
  });
  pages.set(p, promise);
  return promise;
}

function columns() { return Math.max(1, Math.floor(grid.clientWidth / CELL)); }

async function render() {
  const cols = columns();
  spacer.style.height = Math.ceil(total / cols) * CELL + "px";
  const first = Math.max(0, Math.floor(grid.scrollTop / CELL) - 1);
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
    div.className = "cell" + (selected.has(face.name) ? " selected" : "");
    div.dataset.name = face.name;
    div.dataset.index = i;
    div.style.cssText = `left:${(i % cols) * CELL}px;top:${Math.floor(i / cols) * CELL}px;width:${CELL}px;height:${CELL}px`;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = face.name;
    img.title = face.name;
    img.src = "/api/faceset/thumb?" + new URLSearchParams({ faceset, name: face.name });
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
  status.textContent = `${total} faces, ${selected.size} selected`;
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
  render();
});

function reset() { generation++; pages = new Map(); selected.clear(); lastClicked = -1; grid.scrollTop = 0; start(); }

act.addEventListener("click", async () => {
  if (!selected.size) return;
  const url = rejBox.checked ? "/api/faceset/restore" : "/api/faceset/reject";
  const res = await postJSON(url, { faceset, names: [...selected] });
  status.textContent = `moved ${res.moved.length}`;
  reset();
});
sortSel.addEventListener("change", reset);
rejBox.addEventListener("change", () => { act.textContent = rejBox.checked ? "restore selected" : "reject selected"; reset(); });
document.addEventListener("keydown", (ev) => { if (ev.key === "Delete" && !rejBox.checked) act.click(); });
grid.addEventListener("scroll", () => requestAnimationFrame(render));
window.addEventListener("resize", render);

async function start() { await loadPage(0); render(); }
start();
