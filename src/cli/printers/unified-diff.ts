// A unified diff (`diff -u` format) of two texts, line by line, for `xenosctl diff`. Written by
// hand: the objects compared are small YAML documents, so a longest-common-subsequence table is
// fast enough, and no diff library is among the project's dependencies.

interface Op {
  kind: ' ' | '-' | '+';
  line: string;
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function diffLines(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j] = length of the LCS of a[i..] and b[j..]
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i] });
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      ops.push({ kind: '+', line: b[j++] });
    } else {
      ops.push({ kind: '-', line: a[i++] });
    }
  }
  // Within a change, print removals before additions, as diff does.
  for (let k = 0; k < ops.length; ) {
    if (ops[k].kind === ' ') {
      k++;
      continue;
    }
    let e = k;
    while (e < ops.length && ops[e].kind !== ' ') e++;
    const run = ops.slice(k, e);
    ops.splice(k, e - k, ...run.filter((o) => o.kind === '-'), ...run.filter((o) => o.kind === '+'));
    k = e;
  }
  return ops;
}

/** `diff -u` of two texts; '' when they are equal. */
export function unifiedDiff(
  aText: string,
  bText: string,
  labels: { a: string; b: string },
  context = 3,
): string {
  const a = splitLines(aText);
  const b = splitLines(bText);
  const ops = diffLines(a, b);
  if (ops.every((o) => o.kind === ' ')) return '';
  const out = [`--- ${labels.a}`, `+++ ${labels.b}`];
  let k = 0;
  // Line numbers (1-based) in a and b at ops[k].
  const aAt: number[] = [];
  const bAt: number[] = [];
  let ai = 1;
  let bi = 1;
  for (const o of ops) {
    aAt.push(ai);
    bAt.push(bi);
    if (o.kind !== '+') ai++;
    if (o.kind !== '-') bi++;
  }
  while (k < ops.length) {
    while (k < ops.length && ops[k].kind === ' ') k++;
    if (k >= ops.length) break;
    const start = Math.max(0, k - context);
    let end = k;
    // Extend the hunk while the next change is within 2*context unchanged lines.
    for (;;) {
      while (end < ops.length && ops[end].kind !== ' ') end++;
      let next = end;
      while (next < ops.length && ops[next].kind === ' ') next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else {
        end = Math.min(ops.length, end + context);
        break;
      }
    }
    const hunk = ops.slice(start, end);
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    const aStart = aLen === 0 ? aAt[start] - 1 : aAt[start];
    const bStart = bLen === 0 ? bAt[start] - 1 : bAt[start];
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@`);
    for (const o of hunk) out.push(o.kind + o.line);
    k = end;
  }
  return out.join('\n') + '\n';
}
