// Reading a /metrics answer in tests: a strict parser of the Prometheus text exposition format (0.0.4) —
// every line a comment, a HELP/TYPE line or a sample of a family declared before it; label values quoted
// and escaped as the format says; histogram buckets cumulative up to `+Inf` = `_count` — that also holds
// the families to the naming conventions (counters end in `_total`, units in names). A malformed
// exposition throws, naming the line.

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum`, `x_count` for a histogram `x`). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

export function parseMetrics(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the exposition does not end with a newline');
  for (const [i, line] of lines.slice(0, -1).entries()) {
    const at = `line ${i + 1} (${JSON.stringify(line)})`;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, what, name, rest] = m;
      if (!NAME.test(name)) throw new Error(`${at}: bad metric name`);
      const f = families.get(name) ?? { name, help: '', type: 'untyped', samples: [] };
      if (f.samples.length) throw new Error(`${at}: ${what} after ${name}'s samples`);
      if (what === 'HELP') f.help = rest;
      else if (TYPES.has(rest)) f.type = rest as Family['type'];
      else throw new Error(`${at}: unknown type ${rest}`);
      families.set(name, f);
      continue;
    }
    if (line.trim() === '') continue;
    const s = parseSample(line, at);
    const f = familyOf(families, s.name);
    if (!f) throw new Error(`${at}: a sample of no declared family`);
    f.samples.push(s);
  }
  for (const f of families.values()) checkFamily(f);
  return families;
}

function parseSample(line: string, at: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m) throw new Error(`${at}: not a sample`);
  const labels: Record<string, string> = {};
  let rest = m[2]?.slice(1, -1) ?? '';
  while (rest.length) {
    const l = /^([^=]+)="((?:[^"\\]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!l || !LABEL.test(l[1])) throw new Error(`${at}: bad labels`);
    if (l[1] in labels) throw new Error(`${at}: label ${l[1]} twice`);
    labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    rest = rest.slice(l[0].length);
  }
  // As Prometheus reads it (Go's ParseFloat): NaN and Inf in any case.
  const word = m[3].toLowerCase();
  const value = /^[+]?inf$/.test(word) ? Infinity : word === '-inf' ? -Infinity : Number(m[3]);
  if (Number.isNaN(value) && word !== 'nan') throw new Error(`${at}: bad value ${m[3]}`);
  return { name: m[1], labels, value };
}

function familyOf(families: Map<string, Family>, sampleName: string): Family | undefined {
  const own = families.get(sampleName);
  if (own && !SUFFIXES[own.type]) return own;
  for (const f of families.values())
    if ((SUFFIXES[f.type] ?? []).some((suffix) => `${f.name}${suffix}` === sampleName)) return f;
  return own;
}

function checkFamily(f: Family): void {
  if (!f.help) throw new Error(`${f.name} has no HELP`);
  if (f.type === 'counter' && !f.name.endsWith('_total')) throw new Error(`counter ${f.name} lacks _total`);
  if (/_(ms|milliseconds|kb|mb)(_|$)/.test(f.name)) throw new Error(`${f.name}: not a base unit`);
  if (f.type !== 'histogram') return;
  // Per label set (without le): buckets grow and end at +Inf with the count.
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const one = series.get(key) ?? { buckets: [] };
    if (s.name.endsWith('_bucket')) one.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
    if (s.name.endsWith('_count')) one.count = s.value;
    series.set(key, one);
  }
  for (const [key, { buckets, count }] of series) {
    const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i][1] < sorted[i - 1][1]) throw new Error(`${f.name}${key}: buckets not cumulative`);
    if (sorted.at(-1)?.[0] !== Infinity || sorted.at(-1)?.[1] !== count)
      throw new Error(`${f.name}${key}: the +Inf bucket is not the count`);
  }
}

/** The sum of `name`'s samples whose labels include `labels` (a histogram: of its counts). */
export function total(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const f = families.get(name);
  if (!f) return Number.NaN;
  const own = f.type === 'histogram' ? `${name}_count` : name;
  let sum = 0;
  for (const s of f.samples)
    if (s.name === own && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}
