// Verify view: pick a workspace file, see facedouble verify's verdict and details (C2PA, watermark, record).
import { getJSON, message } from "./api.js";

const sel = document.getElementById("file"), verdict = document.getElementById("verdict");
async function run() {
  verdict.textContent = "checking...";
  verdict.className = "";
  try {
    const r = await getJSON("/api/verify?" + new URLSearchParams({ path: sel.value }));
    verdict.textContent = `${r.verdict} (exit ${r.exit_code})`;
    verdict.className = r.exit_code === 0 ? "ok" : "bad";
    verdict.dataset.verdict = r.verdict;
    document.getElementById("summary").textContent = r.summary;
    document.getElementById("report").textContent = r.text;
  } catch (err) { verdict.textContent = message(err); verdict.className = "bad"; }
}
document.getElementById("go").addEventListener("click", run);
(async () => {
  const files = await getJSON("/api/verify/files");
  for (const f of files) sel.append(new Option(f, f));
  const wanted = new URLSearchParams(location.search).get("path");
  if (wanted) {
    if (!files.includes(wanted)) sel.append(new Option(wanted, wanted));
    sel.value = wanted;
    run();
  }
  document.body.dataset.ready = "1";
})();
