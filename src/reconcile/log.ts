// The logger the reconcile runtime and controllers write to: four levels, one line per message,
// prefixed with the component. Components take a Logger so tests and xenosd can route it.

export interface Logger {
  debug(msg: string, ...args: unknown[]): void;
  info(msg: string, ...args: unknown[]): void;
  warn(msg: string, ...args: unknown[]): void;
  error(msg: string, ...args: unknown[]): void;
}

/** Logs to stderr with `[component]`; debug only when XENOS_DEBUG is set. */
export function consoleLogger(component: string): Logger {
  const p = `[${component}]`;
  return {
    debug: (msg, ...args) => {
      if (process.env.XENOS_DEBUG) console.error(p, msg, ...args);
    },
    info: (msg, ...args) => console.error(p, msg, ...args),
    warn: (msg, ...args) => console.error(p, msg, ...args),
    error: (msg, ...args) => console.error(p, msg, ...args),
  };
}
