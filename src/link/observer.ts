// Where the link layer reports what observability tools want to see: a link came up or went down, a stream
// opened or closed. Runtime-agnostic (the Worker shares SecureLink): nothing is reported until a runtime
// installs an observer; on Node, link/diagnostics.ts publishes these on node:diagnostics_channel.

export interface LinkInfo {
  /** Process-unique link number, to pair up and down events and to tell streams of different links apart. */
  link: number;
  role: 'client' | 'server';
}

export interface LinkDownInfo extends LinkInfo {
  /** ZksError code that ended the link, or null after a clean shutdown. */
  error: string | null;
  reason: string;
}

export interface StreamInfo {
  link: number;
  stream: number;
  host: string;
  port: number;
}

export interface StreamCloseInfo extends StreamInfo {
  bytesSent: number;
  bytesReceived: number;
  /** ZksError code that ended the stream (reset, connection lost), or null after a clean close both ways. */
  error: string | null;
}

export interface LinkObserver {
  linkUp(info: LinkInfo): void;
  linkDown(info: LinkDownInfo): void;
  streamOpen(info: StreamInfo): void;
  streamClose(info: StreamCloseInfo): void;
}

let installed: LinkObserver | null = null;

/** Links created from now on report to `observer` (null: to nobody). */
export function setLinkObserver(observer: LinkObserver | null): void {
  installed = observer;
}

export function linkObserver(): LinkObserver | null {
  return installed;
}
