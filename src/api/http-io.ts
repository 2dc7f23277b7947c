// Small response helpers shared by the API's handlers: JSON bodies, Status errors, the
// `Warning: 299` header kubectl prints, and the parsing of query parameters every verb shares.

import type { ServerResponse } from 'node:http';
import { type ApiError, errors } from './status-errors.ts';

export function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache, private',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: ApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, err.code, err.toStatus(), err.headers ?? {});
}

/** `Warning` header values, as the Kubernetes API sends them (kubectl prints each one). */
export function warningHeader(warnings: string[]): Record<string, string[]> {
  if (warnings.length === 0) return {};
  return { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`) };
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** `fieldValidation` query parameter; absent means Strict (bad input changes nothing). */
export function fieldValidation(q: URLSearchParams): FieldValidation {
  const v = q.get('fieldValidation');
  if (v === null || v === '') return 'Strict';
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v;
  throw errors.badRequest(`invalid fieldValidation ${JSON.stringify(v)}: must be Strict, Warn or Ignore`);
}

/** `dryRun` query parameter (and DeleteOptions.dryRun): only `All` is meaningful. */
export function dryRun(values: string[]): boolean {
  for (const v of values) {
    if (v !== 'All')
      throw errors.badRequest(`invalid dryRun ${JSON.stringify(v)}: the only supported value is All`);
  }
  return values.length > 0;
}

export function booleanParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v === '1' || v === 'true';
}

export function integerParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw errors.badRequest(`invalid ${name} ${JSON.stringify(v)}: must be a non-negative integer`);
  return n;
}
