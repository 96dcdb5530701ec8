// Runtime-agnostic wire protocol shared by the Worker and Node: constants, addresses, frames, errors, mux.
export * from './constants';
export * from '../errors/zks-error';
export * from './errors';
export * from './address';
export * from './frames';
export * from './datagram-types';
export * from './datagram-codec';
export * from './datagrams';
export * from './batch';
export * from './stream';
export * from './mux';
export * from './room-wire';
export * from './utf8';
export * from './signal-codec';
