// Two network namespaces joined by one veth pair, for peers that must not see the host's interfaces (WebRTC
// stacks gather host candidates from every interface they can list). Each namespace holds only `lo` and its
// veth end; the interface names avoid the `veth`/`tun` prefixes some stacks skip. `block()` drops every packet in
// and out of one side with nft (a silent dead path, not a link-down error). Needs root; `del()` removes both
// namespaces (and with them the veth pair and the nft table) and is safe to call twice.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';

function must(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface NetnsSide {
  readonly ns: string;
  readonly address: string;
  /** argv prefix that runs a command inside this namespace. */
  readonly exec: string[];
}

export interface NetnsPair {
  readonly a: NetnsSide;
  readonly b: NetnsSide;
  /** Drops all traffic in and out of `side` (nft, inside that namespace only). */
  block(side: NetnsSide): Promise<void>;
  unblock(side: NetnsSide): Promise<void>;
  del(): Promise<void>;
}

const live = new Set<string>();

/** Deletes every namespace created by this process that is still there (exit/signal safety net). */
export function deleteAllNetnsSync(run: (ns: string) => void): void {
  for (const ns of live) run(ns);
  live.clear();
}

export async function createNetnsPair(prefix = 'zkse', subnet = `10.88.${1 + (randomBytes(1)[0]! % 250)}`): Promise<NetnsPair> {
  const tag = randomBytes(3).toString('hex');
  const names = [`${prefix}-a-${tag}`, `${prefix}-b-${tag}`] as const;
  const ifs = [`zka${tag}`, `zkb${tag}`] as const; // < IFNAMSIZ, no "veth" prefix
  const del = async (): Promise<void> => {
    for (const ns of names) {
      if (!live.delete(ns)) continue;
      await must('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  };
  try {
    for (const ns of names) {
      await must('ip', ['netns', 'add', ns]);
      live.add(ns);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await must('ip', ['-n', names[0], 'link', 'add', ifs[0], 'type', 'veth', 'peer', 'name', ifs[1], 'netns', names[1]]);
    for (const i of [0, 1] as const) {
      await must('ip', ['-n', names[i], 'addr', 'add', `${subnet}.${i + 1}/24`, 'dev', ifs[i]]);
      await must('ip', ['-n', names[i], 'link', 'set', ifs[i], 'up']);
    }
  } catch (err) {
    await del();
    throw err;
  }
  const side = (i: 0 | 1): NetnsSide => ({ ns: names[i], address: `${subnet}.${i + 1}`, exec: ['ip', 'netns', 'exec', names[i]] });
  const table = 'zkse_block';
  return {
    a: side(0),
    b: side(1),
    async block(s) {
      const rules = `table inet ${table} {\n chain in { type filter hook input priority 0; policy drop; }\n chain out { type filter hook output priority 0; policy drop; }\n}\n`;
      await must('ip', ['netns', 'exec', s.ns, 'nft', '-f', '-'], rules);
    },
    async unblock(s) {
      await must('ip', ['netns', 'exec', s.ns, 'nft', 'delete', 'table', 'inet', table]);
    },
    del,
  };
}
