// ajv's errors as the Kubernetes apiserver words them: each one located at its field path in the
// object (`spec.ports[0].port`) with a cause reason and a message that says what was expected, in
// plain words for the patterns and formats the CRDs use, with a hint for the usual YAML slips.

import type { ErrorObject } from 'ajv';
import type { SchemaNode } from '../model/crd.ts';
import {
  DNS1123_LABEL,
  DNS1123_LABEL_TEXT,
  DNS1123_SUBDOMAIN,
  DNS1123_SUBDOMAIN_TEXT,
} from '../model/names.ts';
import { describeValue, err, isObject, type LocatedFieldError, orList, plural } from './field-errors.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';

/** Plain-words descriptions of the patterns the CRDs use, for error messages. */
const PATTERN_TEXT: Record<string, string> = {
  [DNS1123_LABEL.source]: DNS1123_LABEL_TEXT,
  [DNS1123_SUBDOMAIN.source]: DNS1123_SUBDOMAIN_TEXT,
  '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$': 'a quantity such as 512Mi, 2Gi or 1G',
  '^([0-9]+(\\.[0-9]+)?|[0-9]+m)$': 'a CPU quantity such as 2, 1.5 or 500m',
  '^sha256:[a-f0-9]{64}$': 'a digest: sha256: followed by 64 lower-case hex digits',
  '^[A-Za-z_][A-Za-z0-9_]*$': "a name of letters, digits and '_', not starting with a digit",
  '^https?://[^\\s]+$': 'an http:// or https:// URL',
};

const TYPE_TEXT: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'null',
};

const FORMAT_TEXT: Record<string, string> = {
  'date-time': 'a date-time in RFC 3339 form, e.g. 2024-05-01T12:00:00Z',
  date: 'a date like 2024-05-01',
  int32: 'a 32-bit integer',
  int64: 'an integer of at most 53 bits',
  byte: 'base64 text',
};

export function translateAjvErrors(
  errors: ErrorObject<string, any, any>[],
  root: unknown,
): LocatedFieldError[] {
  const out: LocatedFieldError[] = [];
  for (const e of errors) {
    // A failed oneOf/anyOf also reports each branch's failure; the composite error says it better.
    if (/\/(oneOf|anyOf)\/\d+\//.test(e.schemaPath)) continue;
    const segs = segmentsOf(root, e.instancePath);
    const p: Record<string, any> = e.params;
    switch (e.keyword) {
      case 'required': {
        const description = e.parentSchema?.properties?.[p.missingProperty]?.description;
        out.push(
          err(
            [...segs, p.missingProperty],
            'FieldValueRequired',
            `Required value${description ? `: ${description}` : ''}`,
          ),
        );
        break;
      }
      case 'additionalProperties': {
        const at = [...segs, p.additionalProperty];
        out.push(err(at, 'FieldValueUnknown', `unknown field "${formatFieldPath(at)}"`));
        break;
      }
      case 'enum':
        out.push(
          err(
            segs,
            'FieldValueNotSupported',
            `must be one of ${e.schema.map(String).join(', ')}; got ${describeValue(e.data)}`,
          ),
        );
        break;
      case 'type': {
        const types: string[] = Array.isArray(e.schema) ? e.schema : [e.schema];
        out.push(
          err(
            segs,
            'FieldValueTypeInvalid',
            `must be ${types.map((t) => TYPE_TEXT[t] ?? t).join(' or ')}; got ${describeValue(e.data)}${typeHint(types, e.data)}`,
          ),
        );
        break;
      }
      case 'maxLength':
        out.push(
          err(
            segs,
            'FieldValueTooLong',
            `must have at most ${p.limit} characters; got ${(e.data as string | unknown[]).length}`,
          ),
        );
        break;
      case 'maxItems':
        out.push(
          err(
            segs,
            'FieldValueTooLong',
            `must have at most ${p.limit} items; got ${(e.data as string | unknown[]).length}`,
          ),
        );
        break;
      case 'maxProperties':
        out.push(
          err(
            segs,
            'FieldValueTooLong',
            `must have at most ${p.limit} entries; got ${Object.keys(e.data as object).length}`,
          ),
        );
        break;
      case 'minLength':
        out.push(err(segs, 'FieldValueInvalid', `must have at least ${plural(p.limit, 'character')}`));
        break;
      case 'minItems':
        out.push(err(segs, 'FieldValueInvalid', `must have at least ${plural(p.limit, 'item')}`));
        break;
      case 'minProperties':
        out.push(err(segs, 'FieldValueInvalid', `must have at least ${plural(p.limit, 'entry', 'entries')}`));
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        out.push(
          err(segs, 'FieldValueInvalid', `must be ${p.comparison} ${p.limit}; got ${describeValue(e.data)}`),
        );
        break;
      case 'pattern': {
        const text = PATTERN_TEXT[p.pattern];
        const want = text ? `be ${text}` : `match the regular expression ${p.pattern}`;
        out.push(err(segs, 'FieldValueInvalid', `must ${want}; got ${describeValue(e.data)}`));
        break;
      }
      case 'format': {
        const text = FORMAT_TEXT[p.format] ?? `in format ${p.format}`;
        out.push(err(segs, 'FieldValueInvalid', `must be ${text}; got ${describeValue(e.data)}`));
        break;
      }
      case 'oneOf':
      case 'anyOf':
        out.push(oneOfError(e, segs));
        break;
      default:
        out.push(
          err(segs, 'FieldValueInvalid', `${e.message ?? 'is invalid'}; got ${describeValue(e.data)}`),
        );
    }
  }
  return out;
}

/** `oneOf: [{required: [url]}, {required: [path]}]` means "exactly one of url or path". A branch may also
 *  say what must be absent (`not: {anyOf: [{required: [...]}, ...]}`): `digest` alone. */
function oneOfError(e: ErrorObject<string, any, any>, segs: PathSegment[]): LocatedFieldError {
  const branches: SchemaNode[] = e.schema as SchemaNode[];
  const absentForm = (n: unknown) =>
    n === undefined ||
    (isObject(n) &&
      Object.keys(n).length === 1 &&
      Array.isArray((n as SchemaNode).anyOf) &&
      (n as SchemaNode).anyOf.every(
        (a: SchemaNode) => Object.keys(a).length === 1 && Array.isArray(a.required),
      ));
  const onlyRequired = branches.every(
    (b) =>
      Array.isArray(b.required) &&
      Object.keys(b).every((k) => k === 'required' || k === 'not') &&
      absentForm(b.not),
  );
  if (!onlyRequired || !isObject(e.data)) {
    return err(
      segs,
      'FieldValueInvalid',
      `does not match any of the allowed forms; got ${describeValue(e.data)}`,
    );
  }
  const names = branches.map((b) => b.required.join(' and '));
  const alternatives = orList(names);
  const has = (fields: string[]) => fields.every((r) => r in (e.data as object));
  const set = names.filter(
    (_, i) =>
      has(branches[i].required) && !(branches[i].not?.anyOf ?? []).some((a: SchemaNode) => has(a.required)),
  );
  if (set.length === 0)
    return err(segs, 'FieldValueRequired', `Required value: must set exactly one of ${alternatives}`);
  return err(segs, 'FieldValueForbidden', `may set only one of ${alternatives}; got ${set.join(' and ')}`);
}

/** `/spec/ports/0/port` → `['spec', 'ports', 0, 'port']`, indices numeric where the data is a list. */
function segmentsOf(root: unknown, instancePath: string): PathSegment[] {
  if (instancePath === '') return [];
  const segs: PathSegment[] = [];
  let cur: any = root;
  for (const raw of instancePath.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const seg: PathSegment = Array.isArray(cur) ? Number(key) : key;
    segs.push(seg);
    cur = cur?.[seg];
  }
  return segs;
}

/** The usual YAML slip: `port: "8080"` where a number is wanted, `memory: 512` where text is. */
function typeHint(types: string[], data: unknown): string {
  if (typeof data === 'string' && data.trim() !== '' && !Number.isNaN(Number(data))) {
    if (types.includes('integer') || types.includes('number')) return ' (remove the quotes)';
  }
  if (
    (typeof data === 'number' || typeof data === 'boolean') &&
    types.length === 1 &&
    types[0] === 'string'
  ) {
    return ` (quote it: "${String(data)}")`;
  }
  return '';
}
