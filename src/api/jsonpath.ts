// A small JSONPath evaluator for the paths CRD printer columns use (`.status.phase`,
// `.spec.disks[0].name`, `.metadata.labels['app.io/x']`, `.items[*].name`,
// `.status.conditions[?(@.type=="Ready")].status`). Shared by the API's Table output and the
// CLI's `-o wide` / `-o jsonpath`. Kubectl's `{...}` template syntax around one path is accepted.

export class JsonPathError extends Error {
  constructor(path: string, why: string) {
    super(`invalid JSONPath ${JSON.stringify(path)}: ${why}`);
    this.name = 'JsonPathError';
  }
}

type Step =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'wildcard' }
  | { kind: 'filter'; path: string[]; op: '==' | '!=' | 'exists'; value?: unknown };

const cache = new Map<string, Step[]>();

/** Parse once, evaluate many times. Throws JsonPathError for syntax this evaluator does not know. */
export function compileJsonPath(expr: string): Step[] {
  const hit = cache.get(expr);
  if (hit) return hit;
  let s = expr.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1).trim();
  if (s.startsWith('$')) s = s.slice(1);
  const steps: Step[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new JsonPathError(expr, why);
  };
  while (i < s.length) {
    const c = s[i];
    if (c === '.') {
      i++;
      if (s[i] === '*') {
        steps.push({ kind: 'wildcard' });
        i++;
        continue;
      }
      const m = /^[A-Za-z0-9_\-$@]+/.exec(s.slice(i));
      if (!m) {
        if (i >= s.length && steps.length === 0) break; // "." alone: the whole object
        fail(`expected a field name at offset ${i}`);
      }
      steps.push({ kind: 'field', name: m![0] });
      i += m![0].length;
    } else if (c === '[') {
      const end = findClose(s, i);
      if (end < 0) fail(`unclosed "[" at offset ${i}`);
      const inner = s.slice(i + 1, end).trim();
      i = end + 1;
      if (inner === '*') steps.push({ kind: 'wildcard' });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: 'index', index: Number(inner) });
      else if (/^'.*'$|^".*"$/.test(inner)) steps.push({ kind: 'field', name: inner.slice(1, -1) });
      else if (inner.startsWith('?(') && inner.endsWith(')'))
        steps.push(parseFilter(expr, inner.slice(2, -1).trim()));
      else fail(`unsupported subscript [${inner}]`);
    } else {
      fail(`unexpected ${JSON.stringify(c)} at offset ${i}`);
    }
  }
  cache.set(expr, steps);
  return steps;
}

function findClose(s: string, open: number): number {
  let quote = '';
  for (let j = open + 1; j < s.length; j++) {
    const ch = s[j];
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ']') return j;
  }
  return -1;
}

function parseFilter(expr: string, body: string): Step {
  const m = /^@((?:\.[A-Za-z0-9_-]+)+)\s*(?:(==|!=)\s*(.+))?$/.exec(body);
  if (!m) throw new JsonPathError(expr, `unsupported filter ?(${body})`);
  const path = m[1].slice(1).split('.');
  if (!m[2]) return { kind: 'filter', path, op: 'exists' };
  const raw = m[3].trim();
  let value: unknown;
  if (/^'.*'$|^".*"$/.test(raw)) value = raw.slice(1, -1);
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  else if (!Number.isNaN(Number(raw))) value = Number(raw);
  else throw new JsonPathError(expr, `unsupported filter value ${raw}`);
  return { kind: 'filter', path, op: m[2] as '==' | '!=', value };
}

function children(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'object' && v !== null) return Object.values(v);
  return [];
}

function field(v: unknown, name: string): unknown {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)[name]
    : undefined;
}

/** Every value the path selects, in document order; [] when nothing matches. */
export function evaluateJsonPath(obj: unknown, expr: string): unknown[] {
  let current: unknown[] = [obj];
  for (const step of compileJsonPath(expr)) {
    const next: unknown[] = [];
    for (const v of current) {
      switch (step.kind) {
        case 'field': {
          const f = field(v, step.name);
          if (f !== undefined) next.push(f);
          break;
        }
        case 'index':
          if (Array.isArray(v)) {
            const f = v[step.index < 0 ? v.length + step.index : step.index];
            if (f !== undefined) next.push(f);
          }
          break;
        case 'wildcard':
          next.push(...children(v));
          break;
        case 'filter':
          for (const item of children(v)) {
            let x: unknown = item;
            for (const p of step.path) x = field(x, p);
            const ok =
              step.op === 'exists' ? x !== undefined : step.op === '==' ? x === step.value : x !== step.value;
            if (ok) next.push(item);
          }
          break;
      }
    }
    current = next;
  }
  return current;
}

/** The first value the path selects, or undefined. */
export function firstJsonPath(obj: unknown, expr: string): unknown {
  return evaluateJsonPath(obj, expr)[0];
}
