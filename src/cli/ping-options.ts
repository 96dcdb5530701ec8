// `zks ping`'s flags on their own, so `zks` can merge them into its parseArgs options without loading the ping
// code (and the exit's ICMP modules) on every start.

/** parseArgs options of `zks ping` (short flags as ping(8) spells them). */
export const PING_OPTIONS = {
  count: { type: 'string', short: 'c' },
  interval: { type: 'string', short: 'i' },
  timeout: { type: 'string', short: 'W' },
  size: { type: 'string', short: 's' },
  tcp: { type: 'string' },
} as const;
