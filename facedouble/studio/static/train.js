// Training view: start/stop/resume a train job; per model a live loss chart, the preview grid, samples/s and
// the time to the next save. Several models side by side, refreshed every 2 s.
import { el, getJSON, postJSON, message } from "./api.js";
import { drawLoss } from "./chart.js";
import { progressCell } from "./workspace_progress.js";

const params = new URLSearchParams(location.search);
const status = document.getElementById("status"), cards = document.getElementById("cards");
const shown = new Map(); // model -> {card, chart, img, text, stop, mtime}

function card(model) {
  const chart = el("canvas", { width: "420", height: "200", class: "chart" });
  const img = el("img", { class: "preview", alt: "no preview yet" });
  const text = el("div", { class: "stats" });
  const prog = el("div", { class: "stats" });
  const stop = el("button", { onclick: () => stopJob(model) }, "stop");
  const resume = el("button", { onclick: () => start(model) }, "resume");
  const node = el("div", { class: "card", "data-model": model }, el("h2", {}, model), text, prog, chart, img,
    el("div", {}, stop, " ", resume));
  cards.append(node);
  const entry = { node, chart, img, text, prog, stop, resume, mtime: null, job: null };
  shown.set(model, entry);
  return entry;
}

async function stopJob(model) {
  const c = shown.get(model);
  if (!c.job) return;
  status.textContent = `stopping ${model} (it saves first)...`;
  try {
    const j = await postJSON(`/api/jobs/${c.job.id}/cancel`, {});
    status.textContent = `${model}: ${j.state}`;
  } catch (err) { status.textContent = message(err); }
  refresh();
}

async function start(model) {
  const options = {};
  for (const k of ["max_iters", "max_minutes", "save_every_min", "preview_every_min"]) {
    const v = document.getElementById(k).value;
    if (v !== "") options[k] = Number(v);
  }
  const extra = [...document.getElementById("extra_dst").selectedOptions].map((o) => o.value);
  const body = { kind: "train", src: document.getElementById("src").value, dst: document.getElementById("dst").value,
    model: model || document.getElementById("model").value, preset: document.getElementById("preset").value, options };
  if (extra.length) body.extra_dst = extra;
  try {
    const j = await postJSON("/api/jobs", body);
    status.textContent = `train job ${j.id} ${j.state}`;
  } catch (err) { status.textContent = message(err); }
  refresh();
}
document.getElementById("start").addEventListener("click", () => start(null));

async function refresh() {
  const models = await getJSON("/api/train/models");
  const only = params.get("model");
  for (const m of models) if (!shown.has(m)) card(m);
  for (const [m, c] of shown) {
    const s = await getJSON("/api/train/status?" + new URLSearchParams({ model: m }));
    drawLoss(c.chart, s.loss);
    c.chart.dataset.points = String(s.loss.length);
    const job = s.job, running = job && (job.state === "running" || job.state === "queued");
    c.job = running ? job : null;
    c.stop.disabled = !running;
    c.resume.disabled = running;
    const live = s.live ? `iter ${s.live.iteration}, ${s.live.samples_per_s} samples/s, save in ${s.live.save_in}` : "";
    c.text.textContent = [job ? job.state : "idle", `checkpoint at iteration ${s.checkpoint_iteration ?? "-"}`, live]
      .filter(Boolean).join("; ");
    c.prog.replaceChildren(...(running ? [progressCell(job)] : []));
    if (s.preview && s.preview_mtime !== c.mtime) {
      c.mtime = s.preview_mtime;
      c.img.src = "/api/file?" + new URLSearchParams({ path: s.preview, v: s.preview_mtime });
    }
    c.node.dataset.state = job ? job.state : "idle";
    c.node.dataset.checkpoint = String(s.checkpoint_iteration ?? "");
    if (only && m === only) c.node.classList.add("focus");
  }
}

async function init() {
  const ws = await getJSON("/api/workspace");
  for (const id of ["src", "dst", "extra_dst"]) {
    const sel = document.getElementById(id);
    for (const f of ws.facesets) sel.append(new Option(f.path, f.path));
  }
  if (ws.facesets.length > 1) document.getElementById("dst").selectedIndex = 1;
  await refresh();
  document.body.dataset.ready = "1";
  setInterval(() => refresh().catch((err) => { status.textContent = message(err); }), 2000);
}
init().catch((err) => { status.textContent = message(err); });
