// Workspace view: what the folder holds, an Extract button per clip, and the jobs with cancel.
import { el, getJSON, postJSON } from "./api.js";

function fill(id, items) {
  const ul = document.getElementById(id);
  ul.replaceChildren(...(items.length ? items : [el("li", {}, "none")]));
}

async function refresh() {
  const ws = await getJSON("/api/workspace");
  document.getElementById("ws").textContent = ws.workspace;
  fill("clips", ws.clips.map((c) => el("li", {}, c + " ",
    el("button", { onclick: () => postJSON("/api/jobs", { kind: "extract", clip: c }).then(refresh) }, "extract"))));
  fill("facesets", ws.facesets.map((f) => el("li", {},
    el("a", { href: "/gallery?faceset=" + encodeURIComponent(f.path) }, f.path), ` (${f.faces} faces)`)));
  fill("models", ws.models.map((m) => el("li", {}, m)));
  fill("renders", ws.renders.map((m) => el("li", {}, m)));
  const rows = ws.jobs.map((j) => el("tr", {}, el("td", {}, j.id), el("td", {}, j.kind), el("td", {}, j.state),
    el("td", {}, j.state === "running" || j.state === "queued"
      ? el("button", { onclick: () => postJSON(`/api/jobs/${j.id}/cancel`, {}).then(refresh) }, "cancel")
      : el("a", { href: `/api/jobs/${j.id}/log`, target: "_blank" }, "log"))));
  document.querySelector("#jobs tbody").replaceChildren(...rows);
}

refresh();
setInterval(refresh, 3000);
