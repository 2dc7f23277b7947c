/** True when `root`/dist (default: the package's) was built after the last change to its sources. */
export function distIsCurrent(root?: string): boolean;
/** The URL to import for `source`, a path like 'src/daemon/main.ts' under the package root: its build in
 *  dist/ while that is current, otherwise the source itself (see code.js). The choice is made once per root. */
export function codeFile(source: string, options?: { root?: string; env?: NodeJS.ProcessEnv }): string;
