// Property tests of label and field selectors (src/store/selectors.ts), which every list and watch
// parses from the query string: any text parses or fails with InvalidSelectorError saying where (the
// column, or the offending term or field), never anything else, never slowly. Printing is stable:
// parse → print → parse gives the same selector, for generated valid selectors and for whatever
// arbitrary text happened to parse; matching agrees with the printed form.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidSelectorError } from '../../src/store/errors.ts';
import {
  type FieldSelector,
  formatFieldSelector,
  formatLabelSelector,
  type LabelSelector,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  SUPPORTED_FIELDS,
} from '../../src/store/selectors.ts';
import { bounded, FUZZ_TEST_TIMEOUT_MS, fuzz } from '../fuzz.ts';

const namePart = fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?$/);
const prefix = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,6}[a-z0-9])?(\.[a-z0-9]{1,5})?$/);
const labelKey = fc.oneof(
  namePart,
  fc.tuple(prefix, namePart).map(([p, n]) => `${p}/${n}`),
);
const labelValue = fc.oneof(namePart, fc.constant(''));
const requirement = fc.oneof(
  fc.record({
    key: labelKey,
    operator: fc.constantFrom('=', '==', '!=' as const),
    values: fc.tuple(labelValue),
  }),
  fc.record({
    key: labelKey,
    operator: fc.constantFrom('in', 'notin' as const),
    // `in ()` has no text form (the parser refuses an empty list, as Kubernetes does): a list whose
    // only values are empty is never built.
    values: fc.array(labelValue, { minLength: 1, maxLength: 4 }).filter((v) => v.join('') !== ''),
  }),
  fc.record({
    key: labelKey,
    operator: fc.constantFrom('exists', '!exists' as const),
    values: fc.constant([]),
  }),
);
const labelSelector = fc.array(requirement, { maxLength: 5 }) as fc.Arbitrary<LabelSelector>;

/** Selector text an attacker or a typo produces. */
const SELECTOR_TOKENS = [
  'a',
  'app',
  'x.io/y',
  ' ',
  '=',
  '==',
  '!=',
  '!',
  ',',
  '(',
  ')',
  'in',
  'notin',
  '<',
  '>',
  '\\',
  '\\,',
  '\\=',
  'é',
  '-',
  '.',
  '/',
  'metadata.name',
  'metadata.namespace',
  'status.phase',
  '\u0000',
];
const selectorText = fc.oneof(
  fc.array(fc.constantFrom(...SELECTOR_TOKENS), { maxLength: 20 }).map((t) => t.join('')),
  fc.string({ maxLength: 40 }),
);

function parsed<T>(parse: () => T): T | undefined {
  try {
    return bounded('parsing a selector', parse);
  } catch (err) {
    if (!(err instanceof InvalidSelectorError)) throw err;
    return undefined;
  }
}

describe('label selector property', () => {
  it(
    'generated selectors print and parse back to themselves, and match the same labels',
    () => {
      fc.assert(
        fc.property(
          labelSelector,
          fc.dictionary(labelKey, labelValue, { maxKeys: 4, noNullPrototype: true }),
          (sel, labels) => {
            const again = parseLabelSelector(formatLabelSelector(sel));
            expect(again).toEqual(sel);
            expect(matchesLabels(again, labels)).toBe(matchesLabels(sel, labels));
          },
        ),
        fuzz(1000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'any text parses or is refused with the column; what parses prints stably',
    () => {
      fc.assert(
        fc.property(selectorText, (text) => {
          let sel: LabelSelector | undefined;
          try {
            sel = bounded('parseLabelSelector', () => parseLabelSelector(text));
          } catch (err) {
            if (!(err instanceof InvalidSelectorError)) throw err;
            expect(err.message).toMatch(/at column \d+: /);
            expect(err.code).toBe(400);
            return;
          }
          expect(parseLabelSelector(formatLabelSelector(sel))).toEqual(sel);
        }),
        fuzz(2000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});

describe('field selector property', () => {
  const fieldSelector = fc.array(
    fc.record({
      field: fc.constantFrom(...SUPPORTED_FIELDS),
      operator: fc.constantFrom('=', '==', '!=' as const),
      value: fc.string({ maxLength: 10 }),
    }),
    { maxLength: 4 },
  ) as fc.Arbitrary<FieldSelector>;

  it(
    'generated selectors, values with any characters, print and parse back to themselves',
    () => {
      fc.assert(
        fc.property(fieldSelector, (sel) => {
          fc.pre(sel.length > 0);
          expect(parseFieldSelector(formatFieldSelector(sel))).toEqual(sel);
        }),
        fuzz(1000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'any text parses or is refused naming the term or field; what parses prints stably',
    () => {
      fc.assert(
        fc.property(selectorText, (text) => {
          const sel = parsed(() => parseFieldSelector(text));
          if (!sel) {
            expect(() => parseFieldSelector(text)).toThrow(
              /is not a requirement|field label not supported: "/,
            );
            return;
          }
          if (sel.length > 0) expect(parseFieldSelector(formatFieldSelector(sel))).toEqual(sel);
        }),
        fuzz(2000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
