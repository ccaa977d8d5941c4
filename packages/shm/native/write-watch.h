// Write-protected copy-on-write mappings that notice their first write (see write-watch.cc).
#pragma once

#include <cstddef>

namespace shoal {

// Installs the SIGSEGV handler once per process (chained to the one already installed).
void InstallWriteWatch();

// Starts watching [address, address + length), a mapping made PROT_READ. Returns false when the
// table is full: the caller then maps read-write and treats the mapping as written.
bool WatchRegion(void* address, size_t length);

// Stops watching the region starting at `address` (before it is unmapped).
void UnwatchRegion(void* address);

// Whether the region starting at `address` has been written since it was watched; a region that
// is not watched counts as written.
bool RegionWritten(void* address);

}  // namespace shoal
