// Reading and decoding request bodies: capped in size like Kubernetes (3 MiB), decoded as JSON or
// YAML by media type, with errors that say what was wrong and where (line and column, field path).
// Hostile bodies are refused before they are built: nesting past MAX_NESTING_DEPTH, prototype keys,
// duplicate JSON keys, numbers past a double, YAML alias bombs (see input-limits.ts).

import type { IncomingMessage } from 'node:http';
import { MAX_NESTING_DEPTH, MAX_YAML_EXPANSION_BYTES } from './input-limits.ts';
import { scanJsonText } from './json-scan.ts';
import { errors } from './status-errors.ts';
import { parseYamlDocuments } from './yaml-source.ts';

/** Kubernetes' request body limit. */
export const DEFAULT_BODY_LIMIT = 3 * 1024 * 1024;
/** Past this a too-large body is not drained any more, the connection is cut. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

export type BodyFormat = 'json' | 'yaml';

/** Media types accepted for whole objects (POST, PUT). */
export const OBJECT_MEDIA_TYPES: Record<string, BodyFormat> = {
  'application/json': 'json',
  'application/yaml': 'yaml',
};

/** The media type of a Content-Type header, without parameters, lower-case. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

/** Read the whole body; a body over `limit` bytes is drained and answered with 413 (`hint` says why the
 *  limit is what it is, when it is not the usual one). */
export async function readBody(req: IncomingMessage, limit: number, hint?: string): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > DRAIN_LIMIT) {
    req.destroy();
    throw errors.tooLarge(limit, hint);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = declared > limit;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > DRAIN_LIMIT) {
      req.destroy();
      throw errors.tooLarge(limit, hint);
    }
    if (size > limit) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
  }
  if (tooLarge) throw errors.tooLarge(limit, hint);
  return Buffer.concat(chunks);
}

/** Decode a JSON or YAML document; 400 (413 for an alias bomb) with the position of the mistake otherwise. */
export function decodeBody(body: Buffer, format: BodyFormat): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '')
    throw errors.badRequest('the request body is empty; send the object as JSON or YAML');
  return format === 'json' ? decodeJson(text) : decodeYaml(text);
}

function decodeJson(text: string): unknown {
  const problem = scanJsonText(text, MAX_NESTING_DEPTH);
  if (problem) {
    const where = `at line ${problem.line}, column ${problem.column}`;
    if (problem.reason === 'syntax')
      throw errors.badRequest(`the request body is not valid JSON ${where}: ${problem.message}`);
    throw errors.badRequest(`the request body is refused ${where}: ${problem.message}`, [
      { reason: 'FieldValueForbidden', field: problem.path, message: problem.message },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw errors.badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function decodeYaml(text: string): unknown {
  const parsed = parseYamlDocuments(text, undefined, { maxExpandedBytes: MAX_YAML_EXPANSION_BYTES.server });
  const [first] = parsed.errors;
  if (first) {
    const where = `at line ${first.line}, column ${first.column}`;
    if (first.reason === 'too-large')
      throw errors.entityTooLarge(`the request body is refused ${where}: ${first.message}`);
    if (first.reason === 'syntax')
      throw errors.badRequest(
        `the request body is not valid YAML ${where}: ${first.message.replace(/^YAML syntax error: /, '')}`,
      );
    const causes = first.path
      ? [{ reason: 'FieldValueForbidden', field: first.path, message: first.message }]
      : undefined;
    throw errors.badRequest(`the request body is refused ${where}: ${first.message}`, causes);
  }
  if (parsed.documents.length !== 1) {
    throw errors.badRequest(
      `the request body must be one YAML document; it has ${parsed.documents.length} (send one object per request)`,
    );
  }
  return parsed.documents[0].value;
}

/** Decode a body that must be one object (a resource or DeleteOptions). */
export function decodeObject(body: Buffer, format: BodyFormat): Record<string, unknown> {
  return asObject(decodeBody(body, format));
}

/** A decoded body that must be one object; 400 otherwise. */
export function asObject(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw errors.badRequest(
      `the request body must be a single object, not ${Array.isArray(v) ? 'an array' : typeof v}`,
    );
  }
  return v as Record<string, unknown>;
}
