// This process's file descriptors, for the daemon (which raises its limit at start) and the node's
// report (open and limit, shown by `shoal status`). The addon call lives behind the store, and
// only node/ and client/ may use the store's values.
export { descriptorUsage, raiseDescriptorLimit, type DescriptorUsage } from '@shoal/store';
