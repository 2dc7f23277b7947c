// A unified diff (`diff -u` format) of two texts, for `xenosctl diff`, made by the `diff` package
// (jsdiff, the diff library of the npm ecosystem): only the `===` separator line it puts first is dropped,
// so the output reads as GNU diff's does.

import { createTwoFilesPatch, structuredPatch } from 'diff';

/** `diff -u` of two texts; '' when they are equal. */
export function unifiedDiff(
  aText: string,
  bText: string,
  labels: { a: string; b: string },
  context = 3,
): string {
  if (
    structuredPatch(labels.a, labels.b, aText, bText, undefined, undefined, { context }).hunks.length === 0
  ) {
    return '';
  }
  const patch = createTwoFilesPatch(labels.a, labels.b, aText, bText, undefined, undefined, { context });
  return patch.slice(patch.indexOf('\n') + 1);
}
