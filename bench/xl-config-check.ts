// Benchmark: checking a Xen domain config with Xen's own parser, per template. For each VM template of
// manifests/ in each guest type (pv, pvh, hvm): building the xl config from the domain spec (xlConfig) and
// running Debian's real `xl create -n` over it (scripts/xen/xl-offline.ts), which must accept it. The bound
// is xl's own start and exit measured in the same run — `xl create -n` of a config it refuses at once (no
// name) — times 1.5: a check should cost little more than starting xl.
//
//   node bench/xl-config-check.ts [--runs 20]

import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { ensureOfflineXl } from '../scripts/xen/xl-offline.ts';
import { xlConfig } from '../src/drivers/xen/xl-config.ts';
import { configInput, TEMPLATES, XlWorkspace } from '../test/drivers/xen/xl-fixtures.ts';
import { printFigure } from './lib/figures.ts';
import { summarise } from './lib/stats.ts';

const BENCH = 'xl-config-check';
const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
const runs = Number(flags.runs);
const load = () =>
  `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;

const ws = new XlWorkspace(await ensureOfflineXl({ log: (l) => console.log(l) }));
try {
  console.log(`# ${BENCH}: ${ws.xl.version}, ${runs} runs each; ${load()}`);
  const baseline: number[] = [];
  for (let i = 0; i < runs; i++) {
    const began = performance.now();
    const r = ws.parse('type = "pvh"\n');
    baseline.push(performance.now() - began);
    if (r.code !== 1) throw new Error(`xl accepted a config without a name: ${r.complaints.join('; ')}`);
  }
  const base = summarise(baseline);
  printFigure(
    { bench: BENCH, name: 'xl start, config refused', value: base.p50, unit: 'ms', note: load() },
    34,
  );
  for (const { file, template, parameters } of TEMPLATES) {
    for (const type of ['pv', 'pvh', 'hvm'] as const) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const spec = ws.specOf(template, parameters);
        spec.boot = { ...spec.boot, xenType: type };
        const input = await configInput(spec);
        const began = performance.now();
        const r = ws.parse(xlConfig(input));
        times.push(performance.now() - began);
        if (r.code !== 0 || r.complaints.length > 0) {
          throw new Error(`xl refused ${file} as ${type}: ${r.complaints.join('; ')}`);
        }
      }
      const t = summarise(times);
      printFigure(
        {
          bench: BENCH,
          name: `${file.split('/')[0]} as ${type}: check p50`,
          value: t.p50,
          unit: 'ms',
          bound: Math.round(base.p50 * 1.5 * 10) / 10,
          note: `p99 ${t.p99.toFixed(1)} ms; ${load()}`,
        },
        34,
      );
    }
  }
} finally {
  ws.cleanup();
}
