// Manifest loading for `xenosctl apply -f` and the GitOps watcher: reads YAML/JSON files (or
// directories of them, or stdin), splits documents and `kind: List`s into objects, validates each
// against its kind's CRD schema, and locates every problem as file:line:column plus field path.
// Callers apply nothing when `errors` is non-empty; a file with one bad document is a bad file.

import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { SERVICE_TEMPLATE } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import { loadKinds } from './kinds.ts';
import { type FieldError, Validator } from './validation.ts';
import { locateField, parseYamlDocuments, type YamlDocument } from './yaml-source.ts';

export interface ManifestDoc {
  /** The file as given (or found under a given directory); `<stdin>` for `-`. */
  file: string;
  /** 0-based position of the object in its file (items of a `kind: List` count one each). */
  index: number;
  /** 1-based line where the object starts. */
  line: number;
  /** The object as written, except: `metadata.namespace` is `default` when a namespaced kind had none,
   *  and a relative ServiceTemplate `spec.image.path` is made absolute against the file's directory.
   *  Schema defaults are not applied here: the API server applies them on write. */
  object: XObject;
  /** Whether the manifest itself set metadata.namespace (so `-n` may fill in, or must agree). */
  namespaceSet: boolean;
}

export interface LocatedError {
  file: string;
  /** 1-based; 0 when the error is about the file as a whole (cannot read it). */
  line: number;
  column: number;
  path?: string;
  message: string;
}

export interface ManifestResult {
  docs: ManifestDoc[];
  errors: LocatedError[];
}

export interface LoadManifestOptions {
  /** Descend into subdirectories of directory arguments, like `kubectl apply -R`. */
  recursive?: boolean;
  /** The text read from standard input, used for the path `-`. */
  stdin?: string;
  validator?: Validator;
  signal?: AbortSignal;
}

export const STDIN_FILE = '<stdin>';
const MANIFEST_FILE = /\.(ya?ml|json)$/i;
const DEFAULT_NAMESPACE = 'default';
/** Far above any real manifest; keeps a mistaken `-f /var/log/big.json` from filling memory. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** `manifests/web.yaml:12:5: spec.runStrategy: must be one of ...` */
export function formatLocatedError(e: LocatedError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}:${e.column}` : e.file;
  return `${where}: ${e.path ? `${e.path}: ` : ''}${e.message}`;
}

let defaultValidator: Validator | undefined;
function validatorFor(v?: Validator): Validator {
  if (v) return v;
  defaultValidator ??= new Validator(loadKinds());
  return defaultValidator;
}

/**
 * Loads manifests from files, directories (their *.yaml, *.yml and *.json files, in name order;
 * subdirectories only with `recursive`, hidden entries skipped) and `-` (opts.stdin). A file named
 * explicitly is read whatever its extension. The same object defined twice is an error.
 */
export async function loadManifestFiles(
  paths: string[],
  opts: LoadManifestOptions = {},
): Promise<ManifestResult> {
  const validator = validatorFor(opts.validator);
  const docs: ManifestDoc[] = [];
  const errors: LocatedError[] = [];
  for (const p of paths) {
    opts.signal?.throwIfAborted();
    if (p === '-') {
      if (opts.stdin === undefined) {
        errors.push({ file: STDIN_FILE, line: 0, column: 0, message: 'no standard input was given for "-"' });
      } else {
        collect(parseManifest(opts.stdin, STDIN_FILE, { validator, baseDir: process.cwd() }), docs, errors);
      }
      continue;
    }
    let files: string[];
    try {
      files = (await stat(p)).isDirectory() ? await manifestFilesIn(p, opts.recursive ?? false) : [p];
    } catch (err) {
      errors.push({ file: p, line: 0, column: 0, message: `cannot read: ${describeFsError(err)}` });
      continue;
    }
    for (const file of files) {
      opts.signal?.throwIfAborted();
      let text: string;
      try {
        const { size } = await stat(file);
        if (size > MAX_FILE_BYTES) {
          errors.push({
            file,
            line: 0,
            column: 0,
            message: `is ${size} bytes; manifests may be at most ${MAX_FILE_BYTES}`,
          });
          continue;
        }
        text = await readFile(file, { encoding: 'utf8', signal: opts.signal });
      } catch (err) {
        opts.signal?.throwIfAborted();
        errors.push({ file, line: 0, column: 0, message: `cannot read: ${describeFsError(err)}` });
        continue;
      }
      collect(parseManifest(text, file, { validator }), docs, errors);
    }
  }
  errors.push(...duplicateErrors(docs));
  return { docs, errors };
}

/** What a watched directory holds at one moment: its manifests (recursively, names relative to it) and
 *  their content digest, read once each, so the digest is of exactly the bytes parsed. */
export interface ManifestDirResult extends ManifestResult {
  /** `sha256:` over each file's relative name and bytes, in name order. */
  digest: string;
  files: string[];
}

/** Loads every manifest under `dir` (as `apply -R -f DIR`), naming files relative to `dir`. */
export async function loadManifestDir(
  dir: string,
  opts: { validator?: Validator; signal?: AbortSignal } = {},
): Promise<ManifestDirResult> {
  const validator = validatorFor(opts.validator);
  const docs: ManifestDoc[] = [];
  const errors: LocatedError[] = [];
  const hash = createHash('sha256');
  const files = (await manifestFilesIn(dir, true)).map((f) => relative(dir, f));
  for (const file of files) {
    opts.signal?.throwIfAborted();
    const full = join(dir, file);
    let bytes: Buffer;
    try {
      if ((await stat(full)).size > MAX_FILE_BYTES) {
        errors.push({
          file,
          line: 0,
          column: 0,
          message: `is over the ${MAX_FILE_BYTES}-byte manifest limit`,
        });
        continue;
      }
      bytes = await readFile(full, { signal: opts.signal });
    } catch (err) {
      opts.signal?.throwIfAborted();
      errors.push({ file, line: 0, column: 0, message: `cannot read: ${describeFsError(err)}` });
      continue;
    }
    hash.update(`${file}\0${bytes.length}\0`).update(bytes);
    collect(parseManifest(bytes.toString('utf8'), file, { validator, baseDir: dirname(full) }), docs, errors);
  }
  errors.push(...duplicateErrors(docs));
  return { docs, errors, digest: `sha256:${hash.digest('hex')}`, files };
}

/** Parses and validates one file's text. `baseDir` (default: the file's directory) anchors relative image paths. */
export function parseManifest(
  text: string,
  file: string,
  opts: { validator?: Validator; baseDir?: string } = {},
): ManifestResult {
  const validator = validatorFor(opts.validator);
  const baseDir = opts.baseDir ?? dirname(resolve(file));
  const parsed = parseYamlDocuments(text, file);
  const errors: LocatedError[] = parsed.errors.map((e) => ({
    file,
    line: e.line,
    column: e.column,
    message: e.message,
  }));
  const docs: ManifestDoc[] = [];
  let index = 0;
  for (const doc of parsed.documents) {
    for (const { value, prefix } of objectsOf(doc)) {
      const objectIndex = index++;
      const at = (path: string, prefer: 'key' | 'value') => locateField(doc, joinPath(prefix, path), prefer);
      const fieldErrors = validator.validate(value);
      for (const e of fieldErrors) {
        const pos = at(e.path, VALUE_REASONS.has(e.reason) ? 'value' : 'key');
        errors.push({
          file,
          line: pos.line,
          column: pos.column,
          path: e.path || undefined,
          message: e.message,
        });
      }
      if (fieldErrors.length > 0) continue;
      const object = value as XObject;
      const namespaceSet = typeof object.metadata.namespace === 'string' && object.metadata.namespace !== '';
      const kind = validator.kindOf(object);
      if (!namespaceSet && kind?.namespaced) object.metadata.namespace = DEFAULT_NAMESPACE;
      resolveImagePath(object, baseDir);
      docs.push({ file, index: objectIndex, line: at('', 'key').line, object, namespaceSet });
    }
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  return { docs, errors };
}

/** Errors about a value point at the value; errors about a field's presence point at its key. */
const VALUE_REASONS = new Set<FieldError['reason']>([
  'FieldValueInvalid',
  'FieldValueNotSupported',
  'FieldValueTypeInvalid',
  'FieldValueTooLong',
  'FieldValueDuplicate',
]);

/** A document is one object, or a `kind: List` of them (`items[i]` prefixes their paths). */
function objectsOf(doc: YamlDocument): { value: unknown; prefix: string }[] {
  const v = doc.value as any;
  if (v && typeof v === 'object' && !Array.isArray(v) && v.kind === 'List' && Array.isArray(v.items)) {
    return v.items.map((value: unknown, i: number) => ({ value, prefix: `items[${i}]` }));
  }
  return [{ value: v, prefix: '' }];
}

function joinPath(prefix: string, path: string): string {
  if (!prefix) return path;
  if (!path) return prefix;
  return path.startsWith('[') ? prefix + path : `${prefix}.${path}`;
}

function resolveImagePath(object: XObject, baseDir: string): void {
  if (object.kind !== SERVICE_TEMPLATE.kind) return;
  const image = (object.spec as any)?.image;
  if (typeof image?.path === 'string' && !isAbsolute(image.path)) image.path = resolve(baseDir, image.path);
}

async function manifestFilesIn(dir: string, recursive: boolean): Promise<string[]> {
  const out: string[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (recursive) out.push(...(await manifestFilesIn(path, true)));
    } else if (MANIFEST_FILE.test(entry.name)) {
      out.push(path);
    }
  }
  return out;
}

function duplicateErrors(docs: ManifestDoc[]): LocatedError[] {
  const seen = new Map<string, ManifestDoc>();
  const out: LocatedError[] = [];
  for (const d of docs) {
    const m = d.object.metadata;
    const id = `${d.object.kind}/${m.namespace ?? ''}/${m.name}`;
    const first = seen.get(id);
    if (!first) seen.set(id, d);
    else {
      out.push({
        file: d.file,
        line: d.line,
        column: 1,
        message: `${d.object.kind} ${m.namespace ? `${m.namespace}/` : ''}${m.name} is already defined at ${first.file}:${first.line}`,
      });
    }
  }
  return out;
}

function collect(r: ManifestResult, docs: ManifestDoc[], errors: LocatedError[]): void {
  for (const d of r.docs) docs.push(d);
  for (const e of r.errors) errors.push(e);
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return (err as Error).message;
}
