// Fetch helpers: the session cookie rides along by itself; state changes add the CSRF header (double submit).
function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

export async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error((await r.text()) || r.statusText);
  return r.json();
}

export function csrfHeader() {
  return { "X-CSRF-Token": cookie("fd_csrf") };
}

export async function postJSON(url, body) {
  const r = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...csrfHeader() },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error((await r.text()) || r.statusText);
  return r.json();
}

// JSON error bodies ({"error": "..."}) shown as their one line
export function message(err) {
  try { return JSON.parse(err.message).error || err.message; } catch { return err.message; }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// True while the user types into a field (shortcut keys then belong to the field); checkboxes and sliders don't
export function typing(target) {
  if (target.tagName === "SELECT" || target.tagName === "TEXTAREA") return true;
  return target.tagName === "INPUT" && !["checkbox", "range", "button"].includes(target.type);
}
