/**
 * Renders rows as a plain text table in Cortex's style: a header line, columns separated by three
 * spaces, left-aligned, no borders. Columns marked `hideWhenZero` disappear when every row has 0/`-`
 * (Cortex's `*` columns: stale, failed, 4XX, 5XX).
 */
export interface Column<R> {
  readonly title: string;
  readonly value: (row: R) => string | number;
  readonly hideWhenZero?: boolean;
}

export function renderTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cols = columns.filter((c) => !c.hideWhenZero || rows.some((r) => !['0', '-', ''].includes(String(c.value(r)))));
  const cells = [cols.map((c) => c.title), ...rows.map((r) => cols.map((c) => String(c.value(r))))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('   ').trimEnd()).join('\n') + '\n';
}

/** `17m`, `2h`, `3d`, `45s` — Cortex's "last update" column. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Cortex's latency format: `%.6g ms`, or seconds when ≥ 1000 ms; `-` without data. */
export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms >= 1000) return `${Number((ms / 1000).toPrecision(6))} s`;
  return `${Number(ms.toPrecision(6))} ms`;
}
