// RSS of every process the soak runs, over time: each sample walks /proc for this process and its descendants
// (children in namespaces included: `ip netns exec` execs), names each by its command line, and sums VmRSS per
// name. A name outlives its pids, so workerd's line goes on across restarts. Names carry the lane: processes in
// another network namespace belong to the zksd lane.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface RssSample {
  /** ms since the soak started. */
  t: number;
  /** name → bytes. */
  rss: Record<string, number>;
}

const ROLES: Array<[RegExp, string]> = [
  [/bin\/zks\.js worker/, 'zks worker (node)'],
  [/bin\/zks\.js exit-peer/, 'exit-peer'],
  [/bin\/zks\.js p2p-client/, 'p2p-client'],
  [/bin\/zksd\.js/, 'zksd'],
  [/soak\/driver\.ts/, 'driver'],
  [/soak\/traffic-server\.ts/, 'traffic server'],
  [/soak\/forwarder\.ts/, 'forwarder'],
  [/world-services\.ts/, 'world services (dns)'],
];

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function netns(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

function rssOf(pid: number): number {
  const m = read(`/proc/${pid}/status`)?.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) * 1024 : 0;
}

/** pid → parent for every live process. */
function parents(): Map<number, number> {
  const table = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = read(`/proc/${pid}/stat`);
    if (stat) table.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  return table;
}

export class RssSampler {
  readonly samples: RssSample[] = [];
  private readonly ownNs = netns(process.pid);
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly hostLane: string, private readonly nsLane: string, private readonly t0 = Date.now()) {}

  /** The name of `pid`, or null for what the soak does not track (ip, sysctl, nft). */
  private name(pid: number): string | null {
    if (pid === process.pid) return 'soak (this process)';
    const comm = read(`/proc/${pid}/comm`)?.trim();
    const cmd = read(`/proc/${pid}/cmdline`)?.replace(/\0/g, ' ') ?? '';
    const role = comm === 'workerd' ? 'workerd' : ROLES.find(([re]) => re.test(cmd))?.[1];
    if (!role) return null;
    return `${role} [${netns(pid) === this.ownNs ? this.hostLane : this.nsLane}]`;
  }

  sample(): RssSample {
    const table = parents();
    const rss: Record<string, number> = {};
    for (const pid of table.keys()) {
      let p: number | undefined = pid;
      for (let hops = 0; p && p !== process.pid && hops < 12; hops++) p = table.get(p);
      if (p !== process.pid) continue;
      const name = this.name(pid);
      if (name) rss[name] = (rss[name] ?? 0) + rssOf(pid);
    }
    const s = { t: Date.now() - this.t0, rss };
    this.samples.push(s);
    return s;
  }

  start(everyMs: number): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Every name seen, in order of first appearance. */
  names(): string[] {
    const seen = new Set<string>();
    for (const s of this.samples) for (const n of Object.keys(s.rss)) seen.add(n);
    return [...seen];
  }
}
