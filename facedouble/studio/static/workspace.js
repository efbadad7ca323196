// Workspace view: what the folder holds, an Extract button per clip, clip upload, and the jobs with progress.
import { el, getJSON, postJSON, csrfHeader } from "./api.js";
import { progressCell } from "./workspace_progress.js";

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
    el("a", { href: "/gallery?faceset=" + encodeURIComponent(f.path) }, f.path), ` (${f.faces} faces) `,
    el("a", { href: "/mask?faceset=" + encodeURIComponent(f.path) }, "masks"))));
  fill("models", ws.model_dirs.map((m) => el("li", {}, m + " ",
    el("a", { href: "/train?model=" + encodeURIComponent(m) }, "training"), " ",
    el("a", { href: "/merge?model=" + encodeURIComponent(m) }, "merge"))));
  fill("renders", ws.renders.map((m) => el("li", {}, m + " ",
    el("a", { href: "/verify?path=" + encodeURIComponent(m) }, "verify"))));
  const rows = ws.jobs.map((j) => el("tr", {}, el("td", {}, j.id), el("td", {}, j.kind), el("td", {}, j.state),
    progressCell(j),
    el("td", {}, j.state === "running" || j.state === "queued"
      ? el("button", { onclick: () => postJSON(`/api/jobs/${j.id}/cancel`, {}).then(refresh) }, "cancel")
      : el("a", { href: `/api/jobs/${j.id}/log`, target: "_blank" }, "log"))));
  document.querySelector("#jobs tbody").replaceChildren(...rows);
}

// Upload: the raw file as the body (no multipart), the name in the query; the server picks a safe name.
document.getElementById("upload").addEventListener("change", (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  const bar = document.getElementById("upbar"), status = document.getElementById("upstatus");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/upload?" + new URLSearchParams({ name: file.name }));
  for (const [k, v] of Object.entries(csrfHeader())) xhr.setRequestHeader(k, v);
  bar.hidden = false;
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  xhr.onload = () => {
    bar.hidden = true;
    status.textContent = xhr.status === 200 ? "added " + JSON.parse(xhr.responseText).clip : xhr.responseText;
    refresh();
  };
  xhr.send(file);
});

refresh();
setInterval(refresh, 2000);
