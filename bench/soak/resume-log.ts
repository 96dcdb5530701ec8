// What the relay-mode processes say about resume, read from their log lines (README "Resume"): the client side
// (p2p-client, zksd: src/client/connection.ts, pool.ts) and the exit peer (src/exit/session.ts). Counts and resume
// times for the report, plus every other line that reads like trouble, with numbers masked so alike lines group.
import type { Child } from './procs';

export interface ResumeLog {
  /** Client: "WebSocket lost (…); resuming the session". */
  lost: number;
  /** Client: "session resumed [on …] after N ms". */
  resumed: number;
  resumeMs: number[];
  /** Client: "could not resume the session: …" (refused or past the grace period). */
  notResumed: number;
  /** Client: "relay connection #N lost: … (its open streams were reset; …)". */
  streamsReset: number;
  /** Exit: "session N: lost its WebSocket (…); kept …". */
  exitDetached: number;
  /** Exit: "session N: resumed as session M". */
  exitResumed: number;
  /** Exit: "session N: ended: …". */
  exitEnded: number;
  /** Masked line → count, for lines that look like errors. */
  notable: Map<string, number>;
}

export function emptyResumeLog(): ResumeLog {
  return { lost: 0, resumed: 0, resumeMs: [], notResumed: 0, streamsReset: 0, exitDetached: 0, exitResumed: 0, exitEnded: 0, notable: new Map() };
}

const TROUBLE = /error|refused|reset|could not|failed|ended|timed out|dropped|ZKS_ERR|exception|unhandled/i;
/** Normal under this soak's chaos: each kill or restart produces these by design. */
const EXPECTED = /WebSocket lost \(|session resumed\b.* after|lost its WebSocket|resumed as session|relay connection failed: .*(ECONNREFUSED|ECONNRESET|socket hang up|closed)|retrying in/;

function mask(line: string): string {
  return line.replace(/\d+(\.\d+)?/g, 'N').replace(/[A-Za-z0-9_-]{32,}/g, '…').slice(0, 200);
}

function note(log: ResumeLog, line: string): void {
  if (!TROUBLE.test(line) || EXPECTED.test(line)) return;
  const key = mask(line);
  log.notable.set(key, (log.notable.get(key) ?? 0) + 1);
}

/** Counts a client side's lines (p2p-client, zksd) into `log`. */
export function watchClient(child: Child, log: ResumeLog): void {
  child.onLine((line) => {
    if (!line) return;
    if (/WebSocket lost \(/.test(line)) log.lost++;
    const m = line.match(/session resumed\b.* after (\d+) ms/);
    if (m) log.resumed++, log.resumeMs.push(Number(m[1]));
    if (/could not resume the session/.test(line)) log.notResumed++;
    if (/its open streams were reset/.test(line)) log.streamsReset++;
    note(log, line);
  });
}

/** Counts an exit peer's lines into `log`. */
export function watchExit(child: Child, log: ResumeLog): void {
  child.onLine((line) => {
    if (!line) return;
    if (/: lost its WebSocket/.test(line)) log.exitDetached++;
    if (/: resumed as session/.test(line)) log.exitResumed++;
    if (/: ended: /.test(line)) log.exitEnded++;
    note(log, line);
  });
}
