// The host-network layer of zksd: what `zksd up` changes outside the process (kill switch, routes, DNS) and how
// `zksd down` puts every bit of it back. Order up: kill switch → routes → DNS; down: DNS → routes → kill switch, so
// no packet leaks while either runs. Every change is in the state file before (or as) it is made; down and
// recover() undo from it and tolerate what is already gone (the TUN vanishes with a crashed daemon). Operations on
// one HostNetwork run one at a time.

import { ZksError } from '../../errors/zks-error';
import { canonicalIp, parseCidr, type Cidr } from './cidr';
import { isIP } from 'node:net';
import { killSwitchAllowDirect, killSwitchBypass, killSwitchOff, killSwitchOn, type KillSwitchSpec } from './killswitch';
import { applyDns, backupDns, restoreDns } from './resolv';
import { bypassRoutesAdd, routesDel, routesUp, uplinkInterfaces, type RouteRecord } from './routes';
import { DEFAULT_STATE_PATH, readState, removeState, STATE_VERSION, writeState, type HostState } from './state';

export { parseCidr, type Cidr } from './cidr';
export { DEFAULT_STATE_PATH, type HostState } from './state';
export { KILLSWITCH_TABLE } from './killswitch';

export interface HostPlan {
  /** TUN interface name, already up with its address. */
  tun: string;
  /** IP literals (v4 or v6), resolved by the caller. */
  relayEndpoints: { address: string; port: number }[];
  /** CIDRs; each /2 or longer (host bits are cleared). */
  bypass: string[];
  killSwitch: boolean;
  /** carry: IPv6 default routes into the TUN too; blackhole: IPv6 gets unreachable /1 routes and the kill switch
   *  drops all IPv6 except bypass6/relay. */
  ipv6: 'carry' | 'blackhole';
  /** undefined = leave DNS config alone. */
  dns?: { resolver: string; resolvConfPath?: string };
  /** Default /run/zks/state.json. */
  statePath?: string;
  /** Tests only: apply inside this network namespace (ip -n / ip netns exec). */
  netns?: string;
}

const NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NETNS = /^[A-Za-z0-9_.-]{1,64}$/;

const config = (msg: string): ZksError => new ZksError('ZKS_ERR_CONFIG', msg);

/** A bypass prefix: any valid CIDR of /2 or longer, host bits cleared (parseCidr). Throws ZKS_ERR_CONFIG. */
export function parseBypass(text: string): Cidr {
  const c = parseCidr(text);
  if (c.prefix < 2) throw config(`bypass ${text}: prefixes shorter than /2 would collide with the tunnel's /1 routes`);
  return c;
}

const asSystem = (e: unknown, what: string): ZksError =>
  e instanceof ZksError ? e : new ZksError('ZKS_ERR_SYSTEM', `${what}: ${(e as Error)?.message ?? String(e)}`);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Direct path candidates one daemon run may allow out (each a host route and a kill switch element). */
export const MAX_DIRECT_PEERS = 64;

export class HostNetwork {
  private chain: Promise<unknown> = Promise.resolve();
  private downed = false;

  private constructor(
    private readonly st: HostState,
    private readonly statePath: string,
  ) {}

  /** Applies the plan; on any failure undoes what it did and throws (ZKS_ERR_CONFIG for a bad plan, before any
   *  change; ZKS_ERR_SYSTEM otherwise). A stale state file from a crashed daemon is undone first. */
  static async up(plan: HostPlan): Promise<HostNetwork> {
    if (!NAME.test(plan.tun ?? '')) throw config(`tun: "${plan.tun}" is not an interface name`);
    if (plan.netns !== undefined && !NETNS.test(plan.netns)) throw config(`netns: "${plan.netns}" is not a namespace name`);
    if (plan.ipv6 !== 'carry' && plan.ipv6 !== 'blackhole') throw config(`ipv6: "${plan.ipv6}" must be carry or blackhole`);
    const relayEndpoints = [...new Map(plan.relayEndpoints.map((e) => {
      if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) throw config(`relay endpoint port ${e.port} is not 1-65535`);
      const address = canonicalIp(e.address);
      return [`${address} ${e.port}`, { address, port: e.port }] as const;
    })).values()];
    const bypass = [...new Set(plan.bypass.map((b) => parseBypass(b).text))];
    const resolver = plan.dns ? canonicalIp(plan.dns.resolver) : undefined;
    const statePath = plan.statePath ?? DEFAULT_STATE_PATH;

    const old = await readState(statePath);
    if (old) {
      if (old.pid !== process.pid && pidAlive(old.pid)) {
        throw new ZksError('ZKS_ERR_SYSTEM', `zksd (pid ${old.pid}) already holds the host network (${statePath}); stop it first`);
      }
      if (old.pid === process.pid) throw new ZksError('ZKS_ERR_SYSTEM', `this process already applied ${statePath}; call down() first`);
      await HostNetwork.recover(statePath, plan.netns);
    }

    const uplinks = (await uplinkInterfaces(plan.netns).catch((e) => {
      throw asSystem(e, 'zksd up (reading the default routes)');
    })).filter((name) => name !== plan.tun);
    const st: HostState = {
      version: STATE_VERSION, pid: process.pid, tun: plan.tun, ipv6: plan.ipv6, relayEndpoints, uplinks, bypass,
      routes: [], killSwitch: false, ...(plan.netns ? { netns: plan.netns } : {}),
    };
    const h = new HostNetwork(st, statePath);
    try {
      await writeState(statePath, st);
      if (plan.killSwitch) {
        st.killSwitch = true;
        await writeState(statePath, st);
        await killSwitchOn(h.spec(), st.netns);
      }
      const relays = [...new Set(relayEndpoints.map((e) => e.address))];
      st.routes = await routesUp({ tun: st.tun, relays, bypass, ipv6: st.ipv6, netns: st.netns });
      await writeState(statePath, st);
      if (plan.dns && resolver) {
        const o = { resolver, tun: st.tun, resolvConfPath: plan.dns.resolvConfPath, netns: st.netns };
        st.resolv = await backupDns(o);
        await writeState(statePath, st);
        await applyDns(o, st.resolv);
      }
      return h;
    } catch (e) {
      await h.down().catch(() => {}); // best effort; the state file stays when this fails too
      throw asSystem(e, 'zksd up');
    }
  }

  /** After a crash: undoes what the state file records; false when there is none. For when no daemon runs (the
   *  CLI asks the daemon over the control socket first); `netns` overrides the one recorded (tests). */
  static async recover(statePath: string = DEFAULT_STATE_PATH, netns?: string): Promise<boolean> {
    const st = await readState(statePath);
    if (!st) return false;
    if (netns !== undefined) st.netns = netns;
    await new HostNetwork(st, statePath).down();
    return true;
  }

  get bypass(): readonly string[] {
    return Object.freeze([...this.st.bypass]);
  }

  get killSwitch(): boolean {
    return this.st.killSwitch;
  }

  /** Adds a bypass prefix live: its route (via the gateway that served it before the tunnel), then the nft set. */
  addBypass(cidr: string): Promise<void> {
    return this.serial(async () => {
      this.live();
      const c = parseBypass(cidr).text;
      if (this.st.bypass.includes(c)) return;
      const before = [...this.st.bypass];
      const records = await bypassRoutesAdd(this.st.tun, [c], this.st.netns).catch((e) => {
        throw asSystem(e, `bypass ${c}`);
      });
      this.st.routes.push(...records);
      this.st.bypass.push(c);
      try {
        await writeState(this.statePath, this.st);
        if (this.st.killSwitch) await killSwitchBypass(before, this.st.bypass, this.st.netns);
      } catch (e) {
        await routesDel(records, this.st.netns).catch(() => {});
        this.st.routes = this.st.routes.filter((r) => !records.includes(r));
        this.st.bypass = before;
        await writeState(this.statePath, this.st).catch(() => {});
        throw asSystem(e, `bypass ${c}`);
      }
    });
  }

  /**
   * Lets zksd's direct path (PROTOCOL.md §3.6) reach a peer candidate: a host route via the gateway that served it
   * before the tunnel (else its UDP would enter the TUN), and, under the kill switch, root's UDP from DIRECT_PORTS to
   * exactly `address`:`port`. Kept until down (at most MAX_DIRECT_PEERS).
   */
  allowDirect(address: string, port: number): Promise<void> {
    return this.serial(async () => {
      this.live();
      const st = this.st;
      const allowed = (st.direct ??= []);
      if (allowed.some((e) => e.address === address && e.port === port)) return;
      if (allowed.length >= MAX_DIRECT_PEERS) throw new ZksError('ZKS_ERR_SYSTEM', `already ${MAX_DIRECT_PEERS} direct path candidates allowed; not ${address}:${port}`);
      const prefix = `${address}/${isIP(address) === 6 ? 128 : 32}`;
      let records: RouteRecord[] = [];
      if (!st.routes.some((r) => r.key === prefix)) {
        records = await bypassRoutesAdd(st.tun, [prefix], st.netns).catch((e) => {
          throw asSystem(e, `direct path route to ${address}`);
        });
        st.routes.push(...records);
      }
      allowed.push({ address, port });
      try {
        await writeState(this.statePath, st);
        if (st.killSwitch) await killSwitchAllowDirect(address, port, st.netns);
      } catch (e) {
        await routesDel(records, st.netns).catch(() => {});
        st.routes = st.routes.filter((r) => !records.includes(r));
        st.direct = allowed.filter((x) => x.address !== address || x.port !== port);
        await writeState(this.statePath, st).catch(() => {});
        throw asSystem(e, `direct path to ${address}:${port}`);
      }
    });
  }

  /** Removes a bypass prefix live: the nft set first (its traffic stops leaving at once), then its route. */
  delBypass(cidr: string): Promise<void> {
    return this.serial(async () => {
      this.live();
      const c = parseBypass(cidr).text;
      if (!this.st.bypass.includes(c)) throw config(`bypass ${c} is not in the bypass list`);
      const after = this.st.bypass.filter((b) => b !== c);
      try {
        if (this.st.killSwitch) await killSwitchBypass(this.st.bypass, after, this.st.netns);
        this.st.bypass = after;
        const mine = this.st.routes.filter((r) => r.kind === 'bypass' && r.key === c);
        await routesDel(mine, this.st.netns);
        this.st.routes = this.st.routes.filter((r) => !mine.includes(r));
        await writeState(this.statePath, this.st);
      } catch (e) {
        throw asSystem(e, `bypass ${c}`);
      }
    });
  }

  setKillSwitch(on: boolean): Promise<void> {
    return this.serial(async () => {
      this.live();
      if (on === this.st.killSwitch) return;
      try {
        if (on) {
          this.st.killSwitch = true; // recorded before the table exists: a crash in between over- not under-records
          await writeState(this.statePath, this.st);
          await killSwitchOn(this.spec(), this.st.netns).catch(async (e) => {
            this.st.killSwitch = false;
            await writeState(this.statePath, this.st).catch(() => {});
            throw e;
          });
        } else {
          await killSwitchOff(this.st.netns);
          this.st.killSwitch = false;
          await writeState(this.statePath, this.st);
        }
      } catch (e) {
        throw asSystem(e, `kill switch ${on ? 'on' : 'off'}`);
      }
    });
  }

  /** Undoes everything (DNS, routes, kill switch last). Idempotent. When a step fails the others still run, the
   *  state file keeps what is left, and this throws ZKS_ERR_SYSTEM — `zksd down` can be run again. */
  down(): Promise<void> {
    return this.serial(async () => {
      if (this.downed) return;
      const st = this.st;
      const failures: string[] = [];
      if (st.resolv) {
        await restoreDns(st.resolv, { netns: st.netns }).then(
          () => (st.resolv = undefined), (e) => failures.push(`DNS: ${(e as Error).message}`));
      }
      if (st.routes.length) {
        await routesDel(st.routes, st.netns).then(() => (st.routes = []), (e) => failures.push(`routes: ${(e as Error).message}`));
      }
      if (st.killSwitch) {
        await killSwitchOff(st.netns).then(() => (st.killSwitch = false), (e) => failures.push(`kill switch: ${(e as Error).message}`));
      }
      if (failures.length) {
        await writeState(this.statePath, st).catch(() => {});
        throw new ZksError('ZKS_ERR_SYSTEM', `zksd down left changes in place (recorded in ${this.statePath}): ${failures.join('; ')}`);
      }
      await removeState(this.statePath);
      this.downed = true;
    });
  }

  private spec(): KillSwitchSpec {
    const { tun, relayEndpoints, uplinks = [], bypass, ipv6, direct = [] } = this.st;
    return { tun, relayEndpoints, uplinks, bypass, ipv6, direct };
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.chain.then(op);
    this.chain = next.catch(() => {});
    return next;
  }

  private live(): void {
    if (this.downed) throw new ZksError('ZKS_ERR_SYSTEM', 'the host network is already down; run up again');
  }
}
