// Storage for the netstack's sockets: a byte ring (send/receive queues) and the out-of-order assembler.
export * from './ring-buffer';
export * from './assembler';
