// `-o jsonpath=TEMPLATE`: kubectl's template language over the JSONPath evaluator of
// src/api/jsonpath.ts. Supported: literal text, `{.path}` (several matches joined by spaces),
// `{range .path}...{end}` (nested paths relative to each item), `{@}`, and quoted literals such as
// `{"\n"}` or `{'\t'}`.

import { evaluateJsonPath, JsonPathError } from '../../api/jsonpath.ts';
import { UsageError } from '../errors.ts';

type Node =
  | { type: 'text'; text: string }
  | { type: 'path'; expr: string }
  | { type: 'range'; expr: string; body: Node[] };

function unescapeLiteral(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
}

/** Parses a template; throws UsageError with the offending part. */
export function parseTemplate(template: string): Node[] {
  const root: Node[] = [];
  const stack: Node[][] = [root];
  let i = 0;
  let text = '';
  const flush = () => {
    if (text) stack[stack.length - 1].push({ type: 'text', text: unescapeLiteral(text) });
    text = '';
  };
  while (i < template.length) {
    const c = template[i];
    if (c !== '{') {
      text += c;
      i++;
      continue;
    }
    const end = closingBrace(template, i);
    if (end < 0)
      throw new UsageError(`jsonpath template ${JSON.stringify(template)}: unclosed "{" at offset ${i}`);
    flush();
    const inner = template.slice(i + 1, end).trim();
    i = end + 1;
    const current = stack[stack.length - 1];
    if (/^(['"]).*\1$/s.test(inner))
      current.push({ type: 'text', text: unescapeLiteral(inner.slice(1, -1)) });
    else if (inner.startsWith('range ')) {
      const node: Node = { type: 'range', expr: inner.slice(6).trim(), body: [] };
      current.push(node);
      stack.push(node.body);
    } else if (inner === 'end') {
      if (stack.length === 1)
        throw new UsageError(`jsonpath template ${JSON.stringify(template)}: {end} without {range}`);
      stack.pop();
    } else current.push({ type: 'path', expr: inner });
  }
  flush();
  if (stack.length > 1)
    throw new UsageError(`jsonpath template ${JSON.stringify(template)}: {range} without {end}`);
  return root;
}

function closingBrace(s: string, open: number): number {
  let quote = '';
  for (let j = open + 1; j < s.length; j++) {
    const ch = s[j];
    if (quote) {
      if (ch === '\\') j++;
      else if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '}') return j;
  }
  return -1;
}

function select(data: unknown, expr: string): unknown[] {
  if (expr === '@' || expr === '$' || expr === '.') return [data];
  const path = expr.startsWith('@') ? expr.slice(1) : expr;
  try {
    return evaluateJsonPath(data, path);
  } catch (err) {
    if (err instanceof JsonPathError) throw new UsageError(err.message);
    throw err;
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

function render(nodes: Node[], data: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.type === 'text') out += n.text;
    else if (n.type === 'path') out += select(data, n.expr).map(show).join(' ');
    else {
      let items = select(data, n.expr);
      // `{range .items}` iterates over the array itself, as kubectl does.
      if (items.length === 1 && Array.isArray(items[0])) items = items[0];
      for (const item of items) out += render(n.body, item);
    }
  }
  return out;
}

export function renderTemplate(template: string, data: unknown): string {
  return render(parseTemplate(template), data);
}
