// Every Shoal error class and the `ShoalErrorCode` union, as the public `shoal` package shows them
// (its index re-exports this module whole, so a new error class is public once it exists).
export * from '@shoal/protocol/errors';
