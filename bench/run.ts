// Runs the benchmarks in bench/ one after another, each as its own child process (so one bench's
// processes, memory and event loop never colour the next), and prints a summary table at the end:
// every figure a bench recorded (bench/lib/figures.ts) with its bound and ratio, and each bench's exit
// status and wall time. Benchmarks are not tests: a figure over its bound is shown, not failed; the
// runner exits non-zero only when a bench itself failed.
//
//   npm run bench                                   every bench
//   npm run bench -- instances-ready api-latency    only these, in this order
//   npm run bench -- "instances-ready:--instances 20" host-footprint:--idle,10
//   npm run bench -- --list                         names only
//
// A bench's own arguments follow its name after ':' (split on spaces or commas). --timeout-minutes N
// (default 30) stops a bench that runs longer (SIGTERM to its process group, SIGKILL 10 s later).

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Figure, formatValue, RESULTS_ENV, ratio, verdict } from './lib/figures.ts';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
/** Cheap and single-process first, then real daemons, then clusters; benches not named here follow. */
const ORDER = [
  'store-write',
  'api-latency',
  'hostile-input',
  'apply-1000',
  'instances-ready',
  'host-footprint',
  'sandbox-start',
  'convergence',
  'p2p-discovery',
  'membership-sim',
  'membership-real',
  'cluster-convergence',
];

interface Outcome {
  name: string;
  args: string[];
  status: string;
  ok: boolean;
  seconds: number;
  figures: Figure[];
}

/** The benches: bench/*.ts files whose first line starts with "// Benchmark" (scratch files are not). */
function available(): string[] {
  const found = readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
    .filter((f) => readFileSync(join(BENCH_DIR, f), 'utf8').startsWith('// Benchmark'))
    .map((f) => basename(f, '.ts'));
  return [...ORDER.filter((n) => found.includes(n)), ...found.filter((n) => !ORDER.includes(n)).sort()];
}

function parse(argv: string[]): { selected: { name: string; args: string[] }[]; timeoutMs: number } {
  let timeoutMs = 30 * 60_000;
  const selected: { name: string; args: string[] }[] = [];
  const names = available();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--list') {
      console.log(names.join('\n'));
      process.exit(0);
    }
    if (a === '--timeout-minutes') {
      timeoutMs = Number(argv[++i]) * 60_000;
      if (!(timeoutMs > 0)) throw new Error('bench/run.ts: --timeout-minutes needs a positive number');
      continue;
    }
    const colon = a.indexOf(':');
    const name = colon < 0 ? a : a.slice(0, colon);
    const args =
      colon < 0
        ? []
        : a
            .slice(colon + 1)
            .split(/[\s,]+/)
            .filter(Boolean);
    if (!names.includes(name)) {
      console.error(`bench/run.ts: no bench named "${name}"; there are: ${names.join(', ')}`);
      process.exit(2);
    }
    selected.push({ name, args });
  }
  return { selected: selected.length ? selected : names.map((name) => ({ name, args: [] })), timeoutMs };
}

let current: { pid: number; exited: Promise<void> } | undefined;

/** Signals every process of a bench's process group; false when none is left. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the group, up to 10 s for the bench to exit, then SIGKILL to whatever is left of it. */
async function stopGroup(pgid: number, exited: Promise<void>): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
  clearTimeout(timer);
  signalGroup(pgid, 'SIGKILL');
}

/** Runs one bench in its own process group; resolves with how it ended. Anything the bench left running in
 *  its group (a xenosd it did not stop) is killed and named in the status. */
function runOne(name: string, args: string[], resultsFile: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', join(BENCH_DIR, `${name}.ts`), ...args],
      { stdio: 'inherit', detached: true, env: { ...process.env, [RESULTS_ENV]: resultsFile } },
    );
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (child.pid) current = { pid: child.pid, exited };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`bench/run.ts: ${name} ran past ${timeoutMs / 60_000} min; stopping it`);
      stopGroup(child.pid!, exited).catch((err) => console.error(`bench/run.ts: stopping ${name}: ${err}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve(`could not start: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      let status = timedOut
        ? 'timed out'
        : code === 0
          ? 'ok'
          : signal
            ? `killed by ${signal}`
            : `exit ${code}`;
      if (child.pid && signalGroup(child.pid, 0)) {
        signalGroup(child.pid, 'SIGKILL');
        status += ' (left processes running: killed)';
      }
      resolve(status);
    });
  });
}

function readFigures(file: string): Figure[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Figure);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function summary(outcomes: Outcome[], loadBefore: string): string {
  const rows = [['bench', 'figure', 'value', 'bound', 'ratio', 'verdict']];
  for (const o of outcomes) {
    for (const f of o.figures) {
      const kind = (f.boundKind ?? 'max') === 'max' ? '<=' : '>=';
      rows.push([
        o.name,
        f.name,
        `${formatValue(f.value)} ${f.unit}`,
        f.bound === undefined ? '-' : `${kind} ${f.bound} ${f.unit}`,
        f.bound === undefined ? '-' : ratio(f)!.toFixed(2),
        verdict(f),
      ]);
    }
  }
  const runs = [['bench', 'status', 'seconds', 'figures', 'arguments']];
  for (const o of outcomes) {
    runs.push([o.name, o.status, o.seconds.toFixed(0), String(o.figures.length), o.args.join(' ')]);
  }
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return [
    '',
    `=== bench summary (load average before ${loadBefore}, after ${load}; ${process.version}) ===`,
    rows.length > 1 ? table(rows) : '(no figures recorded)',
    '',
    table(runs),
  ].join('\n');
}

const { selected, timeoutMs } = parse(process.argv.slice(2));
const dir = mkdtempSync(join(tmpdir(), 'xenos-bench-run-'));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    const stopping = current ? stopGroup(current.pid, current.exited) : Promise.resolve();
    stopping
      .catch((err) => console.error(`bench/run.ts: stopping the running bench: ${err}`))
      .finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(130);
      });
  });
}
const loadBefore = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
const outcomes: Outcome[] = [];
try {
  for (const [i, { name, args }] of selected.entries()) {
    console.log(`\n--- ${name} ${args.join(' ')} (${i + 1} of ${selected.length}) ---`);
    const resultsFile = join(dir, `${name}-${i}.jsonl`);
    const t0 = performance.now();
    const status = await runOne(name, args, resultsFile, timeoutMs);
    outcomes.push({
      name,
      args,
      status,
      ok: status === 'ok',
      seconds: (performance.now() - t0) / 1000,
      figures: readFigures(resultsFile),
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(summary(outcomes, loadBefore));
if (outcomes.some((o) => !o.ok)) process.exitCode = 1;
