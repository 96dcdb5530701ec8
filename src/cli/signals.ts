// Taking over the termination signals from the libraries a command loaded (Miniflare's exit hook exits 130/143
// at once, before our stack could close). Node watches a signal while it has at least one listener: removing
// every listener and then adding ours replaced the watcher, and a signal that had arrived just before — a test
// or a service manager signalling as soon as it read "ready" — went with the old watcher, unheard. So ours is
// added first and the others are removed after: the watcher stays, and a pending signal reaches ours.

export const TERMINATION_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Makes `handler` the only listener of each of `signals`, never leaving a signal without one. */
export function takeOverSignals(handler: (signal: NodeJS.Signals) => void, signals: readonly NodeJS.Signals[] = TERMINATION_SIGNALS): void {
  for (const sig of signals) {
    process.on(sig, handler);
    for (const other of process.listeners(sig)) if (other !== handler) process.removeListener(sig, other);
  }
}
