// Renders from the feed's latest state: one React update per control event (flows 4×/s, status 1×/s), no timers
// of our own, so the screen changes only when the daemon says something changed.

import { useSyncExternalStore } from 'react';
import type { ControlFeed, FeedState } from '../feed';

export function useFeed(feed: ControlFeed): FeedState {
  return useSyncExternalStore(feed.subscribe, feed.getState);
}
