// Node side of link observability: publishes the link layer's events (link/observer.ts) on
// node:diagnostics_channel and, when NODE_DEBUG names them, to stderr through util.debuglog. Both cost one
// check per event when nobody listens (events are per link and per stream, never per record).
//   channels: zks:link:up, zks:link:down, zks:stream:open, zks:stream:close   (docs/OBSERVABILITY.md)
//   debuglog: zks:link (links), zks:mux (streams)
import { channel } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';
import { setLinkObserver, linkObserver, type LinkObserver } from './observer';

export const LINK_UP_CHANNEL = 'zks:link:up';
export const LINK_DOWN_CHANNEL = 'zks:link:down';
export const STREAM_OPEN_CHANNEL = 'zks:stream:open';
export const STREAM_CLOSE_CHANNEL = 'zks:stream:close';

const linkUp = channel(LINK_UP_CHANNEL);
const linkDown = channel(LINK_DOWN_CHANNEL);
const streamOpen = channel(STREAM_OPEN_CHANNEL);
const streamClose = channel(STREAM_CLOSE_CHANNEL);
const debugLink = debuglog('zks:link');
const debugMux = debuglog('zks:mux');

const diagnostics: LinkObserver = {
  linkUp(info) {
    if (linkUp.hasSubscribers) linkUp.publish(info);
    if (debugLink.enabled) debugLink('link %d up (%s)', info.link, info.role);
  },
  linkDown(info) {
    if (linkDown.hasSubscribers) linkDown.publish(info);
    if (debugLink.enabled) debugLink('link %d down: %s%s', info.link, info.error ?? 'clean', info.error ? ` (${info.reason})` : '');
  },
  streamOpen(info) {
    if (streamOpen.hasSubscribers) streamOpen.publish(info);
    if (debugMux.enabled) debugMux('link %d stream %d open to %s:%d', info.link, info.stream, info.host, info.port);
  },
  streamClose(info) {
    if (streamClose.hasSubscribers) streamClose.publish(info);
    if (debugMux.enabled) {
      debugMux('link %d stream %d closed: %s, %d bytes sent, %d received', info.link, info.stream, info.error ?? 'clean',
        info.bytesSent, info.bytesReceived);
    }
  },
};

/** Makes every link created afterwards in this process report here (idempotent; keeps another observer). */
export function installLinkDiagnostics(): void {
  if (linkObserver() === null) setLinkObserver(diagnostics);
}
