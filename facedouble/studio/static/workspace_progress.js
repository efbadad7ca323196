// A job's progress as a bar and "done/total", from the progress the server parsed out of the job's log.
import { el } from "./api.js";

export function progressCell(job) {
  const p = job.progress;
  if (!p) return el("td", {}, job.state === "done" ? "100%" : "");
  const bar = el("progress", { max: "1" });
  if (p.fraction !== null && p.fraction !== undefined) bar.value = p.fraction;
  const text = p.total ? `${p.done}/${p.total}` : `${p.done}`;
  return el("td", { class: "prog", title: p.text }, bar, ` ${p.stage || ""} ${text}`);
}
