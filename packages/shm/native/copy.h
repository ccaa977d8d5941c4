// Copies into the store's reused memory (see copy.cc).
#pragma once

#include <cstddef>

namespace shoal {

// Copies `length` bytes from `source` to `destination` (non-overlapping): large copies with
// non-temporal stores, whatever the two addresses' alignment; small ones with memcpy.
void CopyBytes(void* destination, const void* source, size_t length);

}  // namespace shoal
