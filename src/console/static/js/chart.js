// A moving time chart (uPlot) of one figure per series key. Rebuilt when the set of series changes
// (uPlot draws a fixed set); otherwise fed with setData on every tick.
import uPlot from '/console/vendor/uPlot.esm.js';

const PALETTE = ['#0969da', '#bf3989', '#1a7f37', '#9a6700', '#8250df', '#cf222e', '#57606a', '#116329'];
const DASH = [[], [6, 3], [2, 2], [8, 2, 2, 2]];

export class TimeChart {
  constructor(container, { title, unit, max = 6 }) {
    this.container = container;
    this.title = title;
    this.unit = unit;
    this.max = max;
    this.keys = [];
    this.plot = undefined;
  }

  /** `points`: [{ t: epoch seconds, values: Map<key, number|null> }], oldest first. */
  update(points) {
    const totals = new Map();
    for (const p of points) for (const [k, v] of p.values) totals.set(k, (totals.get(k) ?? 0) + (v ?? 0));
    const keys = [...totals.keys()]
      .sort((a, b) => totals.get(b) - totals.get(a) || a.localeCompare(b))
      .slice(0, this.max);
    keys.sort();
    const data = [points.map((p) => p.t), ...keys.map((k) => points.map((p) => p.values.get(k) ?? null))];
    if (!this.plot || keys.join('\u0000') !== this.keys.join('\u0000')) this.build(keys, data);
    else this.plot.setData(data);
    this.container.dataset.points = String(points.length);
    this.container.dataset.series = String(keys.length);
  }

  build(keys, data) {
    this.plot?.destroy();
    this.keys = keys;
    const width = Math.max(320, this.container.clientWidth - 16);
    this.plot = new uPlot(
      {
        title: this.title,
        width,
        height: 220,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [{}, { label: this.unit, size: 60 }],
        series: [
          {},
          ...keys.map((k, i) => ({
            label: k,
            stroke: PALETTE[i % PALETTE.length],
            dash: DASH[Math.floor(i / 2) % DASH.length],
            width: 2,
            spanGaps: false,
          })),
        ],
      },
      data,
      this.container,
    );
  }

  resize() {
    this.plot?.setSize({ width: Math.max(320, this.container.clientWidth - 16), height: 220 });
  }

  destroy() {
    this.plot?.destroy();
    this.plot = undefined;
  }
}
