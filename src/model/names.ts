// The naming rules of Kubernetes objects, once: DNS-1123 labels (namespaces, port names) and subdomains
// (object names, label key prefixes), and qualified names (label and annotation keys, finalizers) and
// label values. The patterns keep the exact text the CRDs use, so validation can describe them in words.
// And the random suffix of names a controller makes (`web-x7k2q`).

import { randomBytes } from 'node:crypto';

export const DNS1123_LABEL_MAX = 63;
export const DNS1123_SUBDOMAIN_MAX = 253;

/** A DNS-1123 label (no length bound; use isDns1123Label). Its source is the CRDs' pattern. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A DNS-1123 subdomain (no length bound; use isDns1123Subdomain). Its source is the CRDs' pattern. */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** For composing larger patterns (record keys): a label of at most 63 characters, and a subdomain of them. */
export const DNS1123_LABEL_FRAGMENT = '[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?';
export const DNS1123_SUBDOMAIN_FRAGMENT = `${DNS1123_LABEL_FRAGMENT}(?:\\.${DNS1123_LABEL_FRAGMENT})*`;

/** The name part of a qualified name, and a non-empty label value. */
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUALIFIED_NAME_PART_MAX = 63;

export const DNS1123_LABEL_TEXT =
  "a DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit";
export const DNS1123_SUBDOMAIN_TEXT =
  "a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit";
export const LABEL_VALUE_TEXT =
  "empty or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";

export function isDns1123Label(s: string): boolean {
  return s.length <= DNS1123_LABEL_MAX && DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= DNS1123_SUBDOMAIN_MAX && DNS1123_SUBDOMAIN.test(s);
}

/** The name part of a label key (after the optional `prefix/`): 1 to 63 characters. */
export function isQualifiedNamePart(s: string): boolean {
  return s.length > 0 && s.length <= QUALIFIED_NAME_PART_MAX && QUALIFIED_NAME_PART.test(s);
}

export function isLabelValue(s: string): boolean {
  return s === '' || isQualifiedNamePart(s);
}

/** Kubernetes' qualified-name rule for label and annotation keys and finalizers, `[prefix/]name`:
 *  what is wrong with `key`, or undefined. */
export function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2)
    return "must be a name with an optional DNS subdomain prefix and one '/', e.g. example.com/my-name";
  const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]];
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) {
    return `the prefix must be ${DNS1123_SUBDOMAIN_TEXT}`;
  }
  if (!isQualifiedNamePart(name)) {
    return "the name must be 1 to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** Kubernetes' suffix alphabet: no vowels (no words), no look-alikes. */
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** Five random letters for a generated name, as Kubernetes makes them. */
export function generatedSuffix(): string {
  return [...randomBytes(5)].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join('');
}
