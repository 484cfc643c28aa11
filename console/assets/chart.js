// The attempts-per-hour chart: stacked SVG bars (succeeded below, failed above) built
// with createElementNS, plus a text alternative (a summary sentence and a visually
// hidden table of the hours that had attempts).

import { h, s, uid } from './dom.js';

const WIDTH = 720;
const HEIGHT = 180;
const PAD = { top: 12, right: 8, bottom: 24, left: 36 };

function hourLabel(iso) {
  return typeof iso === 'string' && iso.length >= 16 ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : String(iso);
}

function count(n) {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** The chart for a stats answer `{window, buckets: [{start, succeeded, failed}]}`. */
export function attemptsChart(stats, windowLabel) {
  const buckets = Array.isArray(stats?.buckets) ? stats.buckets : [];
  let succeeded = 0;
  let failed = 0;
  let max = 0;
  for (const b of buckets) {
    succeeded += count(b.succeeded);
    failed += count(b.failed);
    max = Math.max(max, count(b.succeeded) + count(b.failed));
  }
  const top = Math.max(1, max);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = buckets.length ? plotW / buckets.length : plotW;
  const barW = Math.max(1, slot * 0.8);
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  const summaryId = uid('chart-summary');
  const summary = h(
    'p',
    { id: summaryId, class: 'chart-summary', 'data-testid': 'chart-summary' },
    `Last ${windowLabel}: ${succeeded} succeeded and ${failed} failed attempts` +
      (buckets.length ? ` (busiest hour: ${max}).` : '.'),
  );

  const svg = s('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: 'chart',
    role: 'img',
    'aria-labelledby': summaryId,
    focusable: 'false',
  });
  // Axes and the scale.
  svg.append(
    s('line', { x1: PAD.left, y1: PAD.top + plotH, x2: WIDTH - PAD.right, y2: PAD.top + plotH, class: 'axis' }),
    s('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + plotH, class: 'axis' }),
    s('text', { x: PAD.left - 4, y: PAD.top + 4, class: 'tick', 'text-anchor': 'end' }, String(top)),
    s('text', { x: PAD.left - 4, y: PAD.top + plotH, class: 'tick', 'text-anchor': 'end' }, '0'),
  );
  const labelEvery = buckets.length > 48 ? 24 : 6;
  buckets.forEach((b, i) => {
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const ok = count(b.succeeded);
    const bad = count(b.failed);
    const group = s('g', { class: 'bar' }, s('title', null, `${hourLabel(b.start)} UTC: ${ok} succeeded, ${bad} failed`));
    if (ok) group.append(s('rect', { x, y: y(ok), width: barW, height: y(0) - y(ok), class: 'ok' }));
    if (bad) group.append(s('rect', { x, y: y(ok + bad), width: barW, height: y(ok) - y(ok + bad), class: 'bad' }));
    svg.append(group);
    if (i % labelEvery === 0) {
      const start = typeof b.start === 'string' ? b.start : '';
      const text = labelEvery === 24 ? start.slice(5, 10) : start.slice(11, 16);
      svg.append(s('text', { x: PAD.left + i * slot, y: HEIGHT - 6, class: 'tick' }, text));
    }
  });

  const busy = buckets.filter((b) => count(b.succeeded) + count(b.failed) > 0);
  const table = h(
    'table',
    { class: 'visually-hidden' },
    h('caption', null, `Attempts per hour, last ${windowLabel} (hours without attempts left out)`),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Hour (UTC)'), h('th', { scope: 'col' }, 'Succeeded'), h('th', { scope: 'col' }, 'Failed'))),
    h(
      'tbody',
      null,
      busy.length
        ? busy.map((b) => h('tr', null, h('th', { scope: 'row' }, hourLabel(b.start)), h('td', null, String(count(b.succeeded))), h('td', null, String(count(b.failed)))))
        : h('tr', null, h('td', { colspan: 3 }, 'No attempts.')),
    ),
  );
  const legend = h(
    'p',
    { class: 'legend', 'aria-hidden': 'true' },
    h('span', { class: 'swatch ok' }),
    ' Succeeded ',
    h('span', { class: 'swatch bad' }),
    ' Failed',
  );
  return h('div', { class: 'chart-wrap' }, summary, svg, legend, table);
}
