// The exit peer's UDP and ICMP service: one UdpNat per client session (its flows, its cap, freed with it) and one
// Pinger for the whole exit (echoes share one ICMP socket per family). Plugs into ExitSession as SessionDatagrams:
// a mux flow's datagrams go to the NAT under the flow's id, the NAT's replies and closes come back on that flow.

import { Capability, type EchoOutcome, type EchoRequest } from '../protocol/datagram-types';
import type { MuxDatagramFlow } from '../protocol/datagrams';
import type { SessionDatagrams } from './session';
import type { LookupFn } from './connect';
import { UdpNat, type UdpNatStats } from './udp-nat';
import { Pinger } from './pinger';

export interface DatagramServiceOptions {
  allowLan: boolean;
  lookup?: LookupFn;
  /** Flows per client session (default 512). */
  maxFlowsPerSession?: number;
  /** Relay UDP at all (default true); `--no-udp` turns it off and the exit announces only echoes. */
  udp?: boolean;
  log?: (line: string) => void;
}

export interface DatagramServiceStats extends UdpNatStats {
  sessions: number;
  echoes: number;
}

export class DatagramService {
  private readonly pinger: Pinger;
  private readonly sessions = new Set<UdpNat>();
  /** Totals of sessions already gone, so stats() counts the exit's whole life. */
  private readonly gone: UdpNatStats = { flows: 0, flowsOpened: 0, datagramsOut: 0, datagramsIn: 0, bytesOut: 0, bytesIn: 0, refused: 0, sendErrors: 0, dropped: 0 };
  private echoes = 0;

  constructor(private readonly opts: DatagramServiceOptions) {
    this.pinger = new Pinger({ allowLan: opts.allowLan, lookup: opts.lookup, log: opts.log });
  }

  /** SessionDatagrams for one new client session. */
  open(): SessionDatagrams {
    const flows = new Map<number, MuxDatagramFlow>();
    const nat = new UdpNat({
      allowLan: this.opts.allowLan,
      lookup: this.opts.lookup,
      maxFlows: this.opts.maxFlowsPerSession,
      log: this.opts.log,
      deliver: (id, source, payload) => void flows.get(id)?.send(source, payload),
      closed: (id, code, message) => {
        const flow = flows.get(id);
        flows.delete(id);
        flow?.refuse(code, message);
      },
    });
    this.sessions.add(nat);
    const udp = this.opts.udp ?? true;
    return {
      capabilities: (udp ? Capability.UDP : 0) | Capability.ICMP_ECHO,
      onFlow: (flow) => {
        flows.set(flow.id, flow);
        flow.onDatagram = (dest, payload) => nat.send(flow.id, dest, payload.slice()); // the NAT keeps it until sent
        flow.onClose = () => {
          if (flows.delete(flow.id)) nat.close(flow.id);
        };
      },
      onEcho: (req: EchoRequest, respond: (o: EchoOutcome) => void) => {
        this.echoes++;
        void this.pinger.echo(req).then((r) => respond(r.ok ? { ok: true, method: r.method, tcpPort: r.tcpPort, address: r.address, ttl: r.ttl, payload: r.payload } : r));
      },
      close: () => {
        flows.clear();
        this.addGone(nat.stats());
        nat.closeAll();
        this.sessions.delete(nat);
      },
    };
  }

  private addGone(s: UdpNatStats): void {
    for (const k of Object.keys(this.gone) as Array<keyof UdpNatStats>) if (k !== 'flows') this.gone[k] += s[k];
  }

  stats(): DatagramServiceStats {
    const out = { ...this.gone, sessions: this.sessions.size, echoes: this.echoes };
    for (const nat of this.sessions) {
      const s = nat.stats();
      for (const k of Object.keys(this.gone) as Array<keyof UdpNatStats>) out[k] += s[k];
    }
    return out;
  }

  close(): void {
    this.pinger.close();
  }
}
