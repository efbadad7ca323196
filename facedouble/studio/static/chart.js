// A small line chart on a canvas: src and dst loss against iteration (log scale when it spans a decade).
export function drawLoss(canvas, rows) {
  const g = canvas.getContext("2d"), W = canvas.width, H = canvas.height, pad = 30;
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#15161a"; g.fillRect(0, 0, W, H);
  g.strokeStyle = "#444"; g.strokeRect(pad, 4, W - pad - 4, H - pad);
  if (!rows.length) { g.fillStyle = "#888"; g.fillText("no loss yet", pad + 8, 20); return; }
  const xs = rows.map((r) => r[0]), vals = rows.flatMap((r) => [r[1], r[2]]).filter((v) => v > 0);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const lo = Math.min(...vals), hi = Math.max(...vals, lo * 1.0001);
  const log = hi / lo > 10, f = (v) => (log ? Math.log(v) : v), flo = f(lo), fhi = f(hi);
  const X = (x) => pad + ((x - x0) / (x1 - x0)) * (W - pad - 6);
  const Y = (v) => 4 + (1 - (f(Math.max(v, lo)) - flo) / (fhi - flo || 1)) * (H - pad - 2);
  for (const [col, colour] of [[1, "#f0b400"], [2, "#58a6ff"]]) {
    g.beginPath();
    rows.forEach((r, i) => (i ? g.lineTo(X(r[0]), Y(r[col])) : g.moveTo(X(r[0]), Y(r[col]))));
    g.strokeStyle = colour; g.lineWidth = 1.5; g.stroke();
  }
  g.fillStyle = "#aaa"; g.font = "10px system-ui";
  g.fillText(hi.toPrecision(3), 2, 12); g.fillText(lo.toPrecision(3), 2, H - pad);
  g.fillText(String(x0), pad, H - 12); g.fillText(String(x1), W - 40, H - 12);
  g.fillStyle = "#f0b400"; g.fillText("src", W - 60, 16); g.fillStyle = "#58a6ff"; g.fillText("dst", W - 34, 16);
}
