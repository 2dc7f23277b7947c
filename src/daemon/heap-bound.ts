// xenosd bounds its own V8 heap. Node's default old-space limit is a quarter of the machine's memory
// (gigabytes), so a busy daemon keeps garbage it has no reason to collect: under churn its RSS grew
// from 150 MB to 800 MB, while a 160 MB cap held it near 250 MB doing the same work. Before anything
// else loads, bin/xenosd.js calls boundHeap(): xenosd replaces itself (process.execve: same pid, no
// wrapper process) with the same command plus --max-old-space-size, unless the user chose one in
// NODE_OPTIONS or on node's command line. `--max-heap <MiB>` sets the bound; `--max-heap 0` keeps V8's.

/** The old-space bound, in MiB, when neither --max-heap nor NODE_OPTIONS says otherwise. */
export const DEFAULT_MAX_HEAP_MIB = 256;

/** The value of `--max-heap N` / `--max-heap=N` in argv, or undefined. */
function maxHeapFlag(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max-heap') return argv[i + 1];
    if (argv[i].startsWith('--max-heap=')) return argv[i].slice('--max-heap='.length);
  }
  return undefined;
}

/** Re-executes this process (running `script`) with a heap bound when it has none; returns only when
 *  it keeps running as it is. */
export function boundHeap(script: string): void {
  const chosen = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
  if (chosen.includes('--max-old-space-size')) return;
  const flag = maxHeapFlag(process.argv.slice(2));
  // A malformed value is left for the option parser, which refuses it with its usual one-line error.
  const mib = flag === undefined ? DEFAULT_MAX_HEAP_MIB : /^\d+$/.test(flag) ? Number(flag) : 0;
  if (mib === 0 || !process.execve) return;
  process.execve(
    process.execPath,
    [process.execPath, ...process.execArgv, `--max-old-space-size=${mib}`, script, ...process.argv.slice(2)],
    process.env,
  );
}
