// Typed reading of SQLite rows. node:sqlite returns every row as `Record<string, SQLOutputValue>`; the
// columns a statement selects are fixed by its SQL, so the caller names the row type once here, next to
// the statement, instead of at every use.

import type { SQLInputValue, StatementSync } from 'node:sqlite';

/** Every row of `stmt` as `Row` (the shape its SELECT list gives). */
export function allRows<Row>(stmt: StatementSync, ...params: SQLInputValue[]): Row[] {
  return stmt.all(...params) as Row[];
}

/** The rows of `stmt` one at a time, as `Row`. */
export function iterateRows<Row>(stmt: StatementSync, ...params: SQLInputValue[]): Iterable<Row> {
  return stmt.iterate(...params) as Iterable<Row>;
}

/** The first row of `stmt` as `Row`, or undefined. */
export function firstRow<Row>(stmt: StatementSync, ...params: SQLInputValue[]): Row | undefined {
  return stmt.get(...params) as Row | undefined;
}
