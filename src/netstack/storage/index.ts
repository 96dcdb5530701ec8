// Storage for the netstack: a byte ring (send/receive queues), the out-of-order assembler, the interface's timer
// heap and its reusable output memory.
export * from './ring-buffer';
export * from './assembler';
export * from './deadline-heap';
export * from './packet-arena';
