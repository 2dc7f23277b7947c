// Prototype pollution kept out: the keys no body, manifest or patch path may use, and the one way the
// patch and merge code writes a property (an own data property, never through a setter such as
// `__proto__`), so that even input nobody checked could not reach Object.prototype.

/** Keys that reach JavaScript's prototype machinery when used as property names. No body, manifest or
 *  patch path may use them: they have no meaning in a Xenos object and every known prototype-pollution
 *  attack goes through one of them. */
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function isPrototypeKey(key: string): boolean {
  return PROTOTYPE_KEYS.has(key);
}

/** The message every layer uses for a prototype key, after the field path it was found at. */
export function prototypeKeyMessage(key: string): string {
  return `the key ${JSON.stringify(key)} is not allowed (it names JavaScript's object prototype); rename or remove it`;
}

/** Writes an own, enumerable data property: never a setter, never the prototype. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}
