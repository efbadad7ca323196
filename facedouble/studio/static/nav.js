// The header links every page shares (workspace, gallery is reached from a faceset).
const links = [["/", "workspace"], ["/mask", "mask editor"], ["/train", "training"], ["/merge", "merge tuning"],
  ["/verify", "verify"]];
const nav = document.querySelector("header nav");
if (nav) {
  for (const [href, text] of links) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (location.pathname === href) a.className = "here";
    nav.append(a);
  }
}
