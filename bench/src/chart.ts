// The article table as an SVG bar chart, written by hand (no chart library): one horizontal bar
// per row on a log scale, as in the article's figure, whose IPC bar dwarfs the rest on a linear
// one. Each row's bar is this machine's median; thin grey bars under it are the article's Python
// figures for the same way of sharing, where it has one.

export interface ChartRow {
  name: string;
  ms: number;
  /** The article's figures for this row (label, ms), drawn as thin grey bars. */
  article: readonly { label: string; ms: number }[];
  /** Drawn in another colour: the row the chart is about (Shoal's object store). */
  highlight?: boolean;
  /** Drawn in a third colour: floors that are not a way of sharing (single thread, memory read). */
  reference?: boolean;
}

const escape = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/** Three significant digits: 4.14 s, 252 ms, 70.7 ms (fmt would print 99.96 as "100.0"). */
const msLabel = (ms: number): string =>
  ms >= 999.5 ? `${Number((ms / 1000).toPrecision(3))} s` : ms >= 99.5 ? `${Math.round(ms)} ms` : `${Number(ms.toPrecision(3))} ms`;

export function articleChart(rows: readonly ChartRow[], title: string, subtitle: string): string {
  const width = 1060;
  const labelWidth = 290;
  const left = labelWidth + 10;
  const right = width - 210; // room for the labels printed past the longest bars
  const top = 78;
  const barHeight = 16;
  const articleBarHeight = 6;
  const rowGap = 14;
  const heights = rows.map((row) => barHeight + row.article.length * (articleBarHeight + 9) + rowGap);
  const plotHeight = heights.reduce((a, b) => a + b, 0);
  const height = top + plotHeight + 64;

  const values = rows.flatMap((row) => [row.ms, ...row.article.map((a) => a.ms)]).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values, 10))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, 100))));
  // Bars start at `lo` (the left edge), so even the shortest one has some length.
  const x = (ms: number): number => left + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (right - left);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="16" y="28" font-size="17" font-weight="600" fill="#1a202c">${escape(title)}</text>`);
  out.push(`<text x="16" y="50" font-size="12" fill="#4a5568">${escape(subtitle)}</text>`);

  // Decade grid lines and their labels, below the plot.
  for (let tick = lo; tick <= hi * 1.0001; tick *= 10) {
    const tx = x(tick).toFixed(1);
    out.push(`<line x1="${tx}" y1="${top - 8}" x2="${tx}" y2="${top + plotHeight}" stroke="#e2e8f0" stroke-width="1"/>`);
    out.push(`<text x="${tx}" y="${top + plotHeight + 18}" text-anchor="middle" font-size="12" fill="#4a5568">${escape(msLabel(tick))}</text>`);
  }
  out.push(
    `<text x="${((left + right) / 2).toFixed(0)}" y="${top + plotHeight + 38}" text-anchor="middle" font-size="12" fill="#4a5568">` +
      'median time per call, log scale (shorter is faster)</text>',
  );

  let y = top;
  rows.forEach((row, i) => {
    const colour = row.highlight ? '#2f855a' : row.reference ? '#718096' : '#2b6cb0';
    out.push(
      `<text x="${labelWidth}" y="${y + barHeight - 3}" text-anchor="end" fill="#1a202c"${row.highlight ? ' font-weight="600"' : ''}>` +
        `${escape(row.name)}</text>`,
    );
    if (Number.isFinite(row.ms) && row.ms > 0) {
      const end = x(row.ms);
      out.push(`<rect x="${left}" y="${y}" width="${(end - left).toFixed(1)}" height="${barHeight}" fill="${colour}" rx="2"/>`);
      out.push(`<text x="${(end + 6).toFixed(1)}" y="${y + barHeight - 3}" fill="#1a202c">${escape(msLabel(row.ms))}</text>`);
    } else {
      out.push(`<text x="${left + 6}" y="${y + barHeight - 3}" fill="#c53030">no result</text>`);
    }
    let ay = y + barHeight + 4;
    for (const figure of row.article) {
      const end = x(figure.ms);
      out.push(`<rect x="${left}" y="${ay}" width="${(end - left).toFixed(1)}" height="${articleBarHeight}" fill="#cbd5e0" rx="1"/>`);
      out.push(
        `<text x="${(end + 6).toFixed(1)}" y="${ay + articleBarHeight}" font-size="11" fill="#718096">` +
          `${escape(`article: ${figure.label} ${msLabel(figure.ms)}`)}</text>`,
      );
      ay += articleBarHeight + 9;
    }
    y += heights[i]!;
  });

  // Legend, top right.
  const legend: [string, string][] = [
    ['#2f855a', 'Shoal object store'],
    ['#2b6cb0', 'other ways, this machine'],
    ['#718096', 'floors'],
    ['#cbd5e0', 'the article (Python)'],
  ];
  legend.forEach(([colour, label], i) => {
    const lx = width - 190;
    const ly = 18 + i * 15;
    out.push(`<rect x="${lx}" y="${ly}" width="12" height="10" fill="${colour}" rx="1"/>`);
    out.push(`<text x="${lx + 18}" y="${ly + 9}" font-size="11" fill="#4a5568">${escape(label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
