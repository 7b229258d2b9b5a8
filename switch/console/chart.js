// chart.js — small line charts on <canvas>, drawn by hand (no chart
// library): a time axis over a fixed span, a value axis from 0 to a rounded
// maximum, one line per series, and a legend with each series' last value.

const GRID = '#e3e8ee';
const AXIS = '#5b6b7b';
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function label(v, unit) {
  const s = v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 'k' : v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1);
  return unit ? s + ' ' + unit : s;
}

/** A chart object bound to a canvas; draw() it with new data. */
export class LineChart {
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = Object.assign({ span: 900, unit: '', height: 160 }, opts || {});
  }

  /** series: [{label, color, points: [[unixSeconds, value], ...]}]; now:
   *  the right edge (unix seconds). The span shown is the data's, from
   *  one minute up to opts.span. */
  draw(series, now) {
    let first = now;
    for (const s of series) if (s.points.length) first = Math.min(first, s.points[0][0]);
    const span = Math.min(this.opts.span, Math.max(60, Math.ceil((now - first) / 60) * 60));
    const c = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(200, c.parentElement ? c.parentElement.clientWidth : 400);
    const height = this.opts.height;
    if (c.width !== Math.round(width * ratio) || c.height !== Math.round(height * ratio)) {
      c.width = Math.round(width * ratio);
      c.height = Math.round(height * ratio);
      c.style.width = width + 'px';
      c.style.height = height + 'px';
    }
    const g = c.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = FONT;
    const left = 46, right = 8, top = 22, bottom = 18;
    const w = width - left - right, h = height - top - bottom;
    const t1 = now, t0 = now - span;
    let max = 0;
    for (const s of series) for (const [t, v] of s.points) if (t >= t0 && Number.isFinite(v)) max = Math.max(max, v);
    max = niceMax(max);

    // grid and value axis
    g.strokeStyle = GRID;
    g.fillStyle = AXIS;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = top + h - (h * i) / 4;
      g.beginPath();
      g.moveTo(left, Math.round(y) + 0.5);
      g.lineTo(left + w, Math.round(y) + 0.5);
      g.stroke();
      g.fillText(label((max * i) / 4, i === 4 ? this.opts.unit : ''), left - 6, y);
    }
    // time axis: at most five ticks, labelled as time ago
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const step = [10, 15, 30, 60, 120, 180, 300].find((s) => span / s <= 4) || 300;
    for (let ago = 0; ago <= span; ago += step) {
      const x = Math.max(left + 12, Math.min(left + w - 12, left + w - (w * ago) / span));
      g.fillText(ago === 0 ? 'now' : '−' + (ago % 60 ? ago + ' s' : ago / 60 + ' min'), x, top + h + 4);
    }

    // lines
    for (const s of series) {
      g.strokeStyle = s.color;
      g.lineWidth = 1.6;
      g.beginPath();
      let started = false, lastT = null;
      for (const [t, v] of s.points) {
        if (t < t0 || !Number.isFinite(v)) { started = false; continue; }
        const x = left + (w * (t - t0)) / (t1 - t0);
        const y = top + h - (h * Math.min(v, max)) / max;
        // a gap of more than 5 s breaks the line (no data then)
        if (!started || (lastT !== null && t - lastT > 5)) {
          g.moveTo(x, y);
          g.fillStyle = s.color;
          g.fillRect(x - 1.5, y - 1.5, 3, 3); // a point with no neighbour still shows
        } else {
          g.lineTo(x, y);
        }
        started = true;
        lastT = t;
      }
      g.stroke();
    }

    // legend: each series with its last value
    g.textAlign = 'left';
    g.textBaseline = 'top';
    let x = left;
    for (const s of series) {
      const last = s.points.length ? s.points[s.points.length - 1][1] : null;
      const text = s.label + (Number.isFinite(last) ? ' ' + label(last, this.opts.unit) : '');
      g.fillStyle = s.color;
      g.fillRect(x, 5, 10, 10);
      g.fillStyle = AXIS;
      g.fillText(text, x + 14, 4);
      x += g.measureText(text).width + 30;
    }
  }
}
