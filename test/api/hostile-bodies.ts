// Test and bench helper: hostile request bodies, written once for the tests that prove they are refused
// (test/api/request-body.test.ts, hostile-input.test.ts) and the bench that times the refusal
// (bench/hostile-input.ts).

/** The "billion laughs": `levels` levels of nine aliases to the level below (9 levels: ~440 bytes of
 *  YAML that would expand to 9^10 strings). */
export function aliasBomb(levels: number): string {
  let text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let i = 1; i <= levels; i++)
    text += `a${i}: &a${i} [${Array(9)
      .fill(`*a${i - 1}`)
      .join(',')}]\n`;
  return text;
}

/** An alias bomb padded to about `bytes` (a comment line), for a bench that names its size. */
export function aliasBombOfSize(bytes: number): string {
  const bomb = aliasBomb(12);
  return bomb + `# ${'x'.repeat(Math.max(0, bytes - bomb.length - 3))}\n`;
}

/** `{"a":{"a":…1…}}`, `n` objects deep, as JSON text. */
export function deepJson(n: number): string {
  return `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
}

/** A JSON patch that adds `seed` at `path` and then copies it `copies` times beside itself. */
export function copyAmplification(path: string, seed: string, copies: number): unknown[] {
  const ops: unknown[] = [{ op: 'add', path, value: seed }];
  for (let i = 0; i < copies; i++) ops.push({ op: 'copy', from: path, path: `${path}${i}` });
  return ops;
}
