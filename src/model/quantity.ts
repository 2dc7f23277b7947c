// Quantities as the CRDs spell them (memory `512Mi`, `2Gi`, `1G`; CPU `2`, `1.5`, `500m`), turned
// into numbers for placement and drivers. The grammars are exactly the CRD patterns (a test holds
// them together), so a value that validated always parses.

/** The memory/disk-size quantity pattern of the CRDs. */
export const MEMORY_QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
/** The CPU quantity pattern of the CRDs. */
export const CPU_QUANTITY = /^(?:([0-9]+(?:\.[0-9]+)?)|([0-9]+)m)$/;

const MULTIPLIER: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** `512Mi` → 536870912 bytes (rounded up to a whole byte); undefined when malformed. */
export function parseMemoryQuantity(text: string): number | undefined {
  const m = MEMORY_QUANTITY.exec(text);
  if (!m) return undefined;
  return Math.ceil(Number(m[1]) * MULTIPLIER[m[2] ?? '']);
}

/** `500m` → 0.5, `2` → 2 cores; undefined when malformed. */
export function parseCpuQuantity(text: string): number | undefined {
  const m = CPU_QUANTITY.exec(text);
  if (!m) return undefined;
  return m[1] !== undefined ? Number(m[1]) : Number(m[2]) / 1000;
}

/** 536870912 → `512Mi`: the largest binary unit that divides the value exactly, else plain bytes. */
export function formatMemoryQuantity(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki']) {
    const size = MULTIPLIER[unit];
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
