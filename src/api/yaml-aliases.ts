// The YAML alias bomb ("billion laughs") refused before anything is expanded: one pass over a document's
// parser events counts its aliases and adds up what the document would be with every alias replaced by
// the node it names — each anchored node's expanded size is known when it closes, so an alias costs one
// lookup, however deep the bomb. The first alias past a limit, or one that names a node it sits inside
// (a cycle), is reported at its own line and column.

import { EVENT_ID, type Event } from 'js-yaml';

export interface AliasLimits {
  /** Aliases (`*name`) in the document. */
  maxAliases: number;
  /** What the document may expand to, in bytes of content (scalars' text plus a little per node). */
  maxExpandedBytes: number;
}

export interface AliasProblem {
  /** 0-based offset of the offending alias (its `*`). */
  offset: number;
  /** The document would expand past `maxExpandedBytes`: a too-large entity rather than a syntax error. */
  tooLarge: boolean;
  message: string;
}

interface Anchor {
  /** Expanded size once the node has closed; undefined while it is open. */
  size?: number;
}

/** Checks one document's events (from its DOCUMENT event to its closing POP). */
export function checkAliases(
  events: readonly Event[],
  text: string,
  limits: AliasLimits,
): AliasProblem | undefined {
  const anchors = new Map<string, Anchor>();
  /** The open collections: where the running total stood when each opened, and its anchor if any. */
  const open: { before: number; anchor?: Anchor }[] = [];
  let total = 0;
  let aliases = 0;
  for (const e of events) {
    switch (e.type) {
      case EVENT_ID.SCALAR: {
        const size = e.valueStart >= 0 ? e.valueEnd - e.valueStart + 2 : 2;
        total += size;
        if (e.anchorStart >= 0) anchors.set(text.slice(e.anchorStart, e.anchorEnd), { size });
        break;
      }
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const frame: { before: number; anchor?: Anchor } = { before: total };
        if (e.anchorStart >= 0) {
          frame.anchor = {};
          anchors.set(text.slice(e.anchorStart, e.anchorEnd), frame.anchor);
        }
        open.push(frame);
        total += 2;
        break;
      }
      case EVENT_ID.POP: {
        const frame = open.pop();
        if (frame?.anchor) frame.anchor.size = total - frame.before;
        break;
      }
      case EVENT_ID.ALIAS: {
        const name = text.slice(e.anchorStart, e.anchorEnd);
        const offset = e.anchorStart - 1;
        aliases++;
        if (aliases > limits.maxAliases) {
          return {
            offset,
            tooLarge: false,
            message: `more than ${limits.maxAliases} aliases in one document; write the repeated parts out`,
          };
        }
        const anchor = anchors.get(name);
        if (!anchor) break; // an unknown alias: the constructor reports it
        if (anchor.size === undefined) {
          return {
            offset,
            tooLarge: false,
            message: `the alias *${name} sits inside the node &${name} it names (a cycle); JSON cannot hold that`,
          };
        }
        total += anchor.size;
        if (total > limits.maxExpandedBytes) {
          return {
            offset,
            tooLarge: true,
            message: `with its aliases expanded the document would be more than ${limits.maxExpandedBytes} bytes (the limit); this alias *${name} alone adds about ${Math.round(anchor.size)} bytes`,
          };
        }
        break;
      }
      default:
        break;
    }
  }
  return undefined;
}
