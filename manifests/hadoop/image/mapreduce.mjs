// The computations of the Hadoop scenario's two jobs, the paper's PiEstimator and Wordcount, as pure
// functions: what a map task computes from its input, and how the master reduces the maps' outputs.
// Every map is deterministic (the π samples come from a PRNG seeded by the job and the task), so a job
// gives the same result however its tasks were spread, retried or recovered after a failover — and a
// test can compute the expected result in-process with runLocally().

import { createHash } from 'node:crypto';

/** Most map tasks a job may have; most samples one π task may draw. */
export const MAX_MAPS = 10_000;
export const MAX_SAMPLES = 1_000_000_000;

/** A job's id: a digest of what it computes, so submitting the same job again (after a failover) finds it. */
export function jobId(spec) {
  const what = spec.type === 'pi' ? [spec.type, spec.maps, spec.samples] : [spec.type, spec.maps, spec.text];
  return `${spec.type}-${createHash('sha256').update(JSON.stringify(what)).digest('hex').slice(0, 12)}`;
}

/** Why `spec` is not a job this master runs, or undefined. */
export function jobProblem(spec) {
  if (!spec || typeof spec !== 'object') return 'expected a JSON object';
  if (spec.type !== 'pi' && spec.type !== 'wordcount') return 'type must be pi or wordcount';
  if (!Number.isInteger(spec.maps) || spec.maps < 1 || spec.maps > MAX_MAPS)
    return `maps must be a whole number from 1 to ${MAX_MAPS}`;
  if (spec.type === 'pi' && !(Number.isInteger(spec.samples) && spec.samples >= 1 && spec.samples <= MAX_SAMPLES))
    return `samples must be a whole number from 1 to ${MAX_SAMPLES}`;
  if (spec.type === 'wordcount' && typeof spec.text !== 'string') return 'text must be a string';
  return undefined;
}

/** mulberry32: a small, fast 32-bit PRNG; good enough for Monte-Carlo, and the same everywhere. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seedOf(job, task) {
  return createHash('sha256').update(`${job}/${task}`).digest().readUInt32BE(0);
}

/** The line ranges of `text` for `maps` tasks, as even as whole lines allow. */
export function splitText(text, maps) {
  const lines = text.split('\n');
  const chunks = [];
  for (let i = 0; i < maps; i++)
    chunks.push(lines.slice(Math.floor((i * lines.length) / maps), Math.floor(((i + 1) * lines.length) / maps)).join('\n'));
  return chunks;
}

/** The input of task `task` of a job (what the master hands a worker). */
export function taskInput(spec, task, chunks) {
  return spec.type === 'pi' ? { samples: spec.samples } : { text: chunks[task] };
}

/** One map task. */
export function map(type, job, task, input) {
  if (type === 'pi') {
    const next = prng(seedOf(job, task));
    let inside = 0;
    for (let i = 0; i < input.samples; i++) {
      const x = next();
      const y = next();
      if (x * x + y * y <= 1) inside++;
    }
    return { inside, samples: input.samples };
  }
  const counts = {};
  for (const word of input.text.toLowerCase().match(/[a-z']+/g) ?? []) counts[word] = (counts[word] ?? 0) + 1;
  return { counts };
}

/** The job's result from every map's output (in task order). */
export function reduce(type, outputs) {
  if (type === 'pi') {
    let inside = 0;
    let samples = 0;
    for (const o of outputs) {
      inside += o.inside;
      samples += o.samples;
    }
    return { pi: (4 * inside) / samples, inside, samples };
  }
  const counts = {};
  for (const o of outputs) for (const [w, n] of Object.entries(o.counts)) counts[w] = (counts[w] ?? 0) + n;
  const sorted = Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const words = Object.values(counts).reduce((s, n) => s + n, 0);
  return { words, distinct: Object.keys(sorted).length, counts: sorted };
}

/** The whole job in this process: what the cluster must answer. */
export function runLocally(spec) {
  const id = jobId(spec);
  const chunks = spec.type === 'wordcount' ? splitText(spec.text, spec.maps) : [];
  const outputs = [];
  for (let t = 0; t < spec.maps; t++) outputs.push(map(spec.type, id, t, taskInput(spec, t, chunks)));
  return reduce(spec.type, outputs);
}
