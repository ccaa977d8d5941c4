// Shoal's shared-memory addon: the few system calls Node cannot make on its own.
//
// Everything here is deliberately thin: open/create/unlink segment files, reserve their pages,
// write into them, map them shared or copy-on-write, and hand the mapping to JavaScript as an
// external ArrayBuffer that unmaps itself when collected. Policy (paths, layout, caching,
// reference counting) lives in TypeScript.
//
// Errors are thrown as JavaScript Errors carrying `code` (e.g. "ENOSPC"), `errno` and `syscall`;
// the TypeScript wrapper adds the path and the advice and turns them into ShoalErrors.

#include <napi.h>

#include <atomic>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <mutex>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "copy.h"
#include "write-watch.h"

namespace {

std::atomic<int64_t> live_mappings{0};
std::atomic<int64_t> live_mapped_bytes{0};

const char* ErrnoCode(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOSPC: return "ENOSPC";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EFBIG: return "EFBIG";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTDIR: return "ENOTDIR";
    case EROFS: return "EROFS";
    case EWOULDBLOCK: return "EWOULDBLOCK";
    case EDQUOT: return "EDQUOT";
    default: return "EUNKNOWN";
  }
}

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(err));
  error.Set("code", Napi::String::New(env, ErrnoCode(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// JavaScript numbers carry sizes up to 2^53 exactly; reject anything that is not a
// non-negative integer so a bad size never reaches the kernel.
bool ToSize(const Napi::Value& value, int64_t* out) {
  if (!value.IsNumber()) return false;
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<int64_t>(d))) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

bool ToFd(const Napi::Value& value, int* out) {
  int64_t v;
  if (!ToSize(value, &v) || v > 0x7fffffff) return false;
  *out = static_cast<int>(v);
  return true;
}

// The bytes of a TypedArray, DataView or ArrayBuffer. Uses the plain N-API info calls, which give
// the data pointer directly: going through the view's ArrayBuffer fails for views over a
// SharedArrayBuffer, which are valid to store (their bytes are copied).
bool ViewBytes(const Napi::Value& value, const uint8_t** data, size_t* length) {
  napi_env env = value.Env();
  void* pointer = nullptr;
  if (value.IsTypedArray()) {
    napi_typedarray_type type;
    size_t count = 0;
    if (napi_get_typedarray_info(env, value, &type, &count, &pointer, nullptr, nullptr) != napi_ok) return false;
    *length = value.As<Napi::TypedArray>().ByteLength();
  } else if (value.IsDataView()) {
    if (napi_get_dataview_info(env, value, length, &pointer, nullptr, nullptr) != napi_ok) return false;
  } else if (value.IsArrayBuffer()) {
    if (napi_get_arraybuffer_info(env, value, &pointer, length) != napi_ok) return false;
  } else {
    return false;
  }
  *data = static_cast<const uint8_t*>(pointer);
  return *length == 0 || pointer != nullptr;
}

// A mapping handed to JavaScript. A copy-on-write (reading) mapping holds a shared flock on its
// file: the lock belongs to the open file description, which the mapping itself keeps alive (a
// VMA holds a reference to its file), so it lasts exactly as long as the mapping, whatever
// happens to the descriptor it was made from, and goes when the process dies, however it dies.
// The store reuses a segment's memory only when it can take the exclusive lock (reclaim()), that
// is when no process of the machine maps the file any more.
struct Mapping {
  void* address;
  size_t length;
  bool unmapped;  // by unmap(), before the finalizer ran
};

std::mutex mappings_mutex;
std::unordered_map<void*, Mapping*> mappings_by_address;

Mapping* FindMapping(void* address) {
  std::lock_guard<std::mutex> guard(mappings_mutex);
  auto found = mappings_by_address.find(address);
  return found == mappings_by_address.end() ? nullptr : found->second;
}

// Takes a flock (LOCK_SH or LOCK_EX) on fd's open file description without waiting: false with
// errno set (EWOULDBLOCK: another description holds a conflicting lock).
bool TryLock(int fd, int operation) {
  int rc;
  do {
    rc = flock(fd, operation | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  return rc == 0;
}

// Whether `path` still names the file open as fd. Checked after taking a lock that was asked for
// after the open: the store renames a file it takes back before letting go of its lock, and ids
// are never reused, so a name that moved means the object is gone.
bool NamesFile(const std::string& path, int fd) {
  struct stat named, held;
  return stat(path.c_str(), &named) == 0 && fstat(fd, &held) == 0 && named.st_ino == held.st_ino && named.st_dev == held.st_dev;
}

void Unmap(Napi::Env /*env*/, void* /*data*/, Mapping* mapping) {
  {
    // After unmap() the address may already belong to a newer mapping: only this one's record goes.
    std::lock_guard<std::mutex> guard(mappings_mutex);
    auto found = mappings_by_address.find(mapping->address);
    if (found != mappings_by_address.end() && found->second == mapping) mappings_by_address.erase(found);
  }
  if (!mapping->unmapped) {
    shoal::UnwatchRegion(mapping->address);
    munmap(mapping->address, mapping->length);
  }
  live_mappings.fetch_sub(1, std::memory_order_relaxed);
  live_mapped_bytes.fetch_sub(static_cast<int64_t>(mapping->length), std::memory_order_relaxed);
  delete mapping;
}

// Watches a fresh PROT_READ private mapping for its first write; when the watch table is full the
// mapping is made writable at once instead (and RegionWritten reports it as written).
void WatchOrOpen(void* address, size_t length) {
  if (!shoal::WatchRegion(address, length)) mprotect(address, length, PROT_READ | PROT_WRITE);
}

// open(path, mode): mode 0 = create exclusively (read-write, 0600), 1 = read-only, 2 = read-write,
// 3 = read-write holding a shared flock (a writer filling a file the store lent it: the store does
// not reclaim the file while the descriptor is open). Mode 3 fails with EWOULDBLOCK while the
// store holds the exclusive lock.
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) return ThrowType(env, "open(path, mode)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int mode = info[1].As<Napi::Number>().Int32Value();
  int flags = O_CLOEXEC;
  if (mode == 0) flags |= O_CREAT | O_EXCL | O_RDWR;
  else if (mode == 1) flags |= O_RDONLY;
  else flags |= O_RDWR;
  int fd;
  do {
    fd = open(path.c_str(), flags, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ThrowErrno(env, errno, "open");
  if (mode == 3) {
    if (!TryLock(fd, LOCK_SH)) {
      int saved = errno;
      close(fd);
      return ThrowErrno(env, saved, "flock");
    }
    if (!NamesFile(path, fd)) {
      close(fd);
      return ThrowErrno(env, ENOENT, "stat");
    }
  }
  return Napi::Number::New(env, fd);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ToFd(info[0], &fd)) return ThrowType(env, "close(fd)");
  // Linux always releases the descriptor, even when close reports EINTR: never retry.
  if (close(fd) != 0 && errno != EINTR) return ThrowErrno(env, errno, "close");
  return env.Undefined();
}

// allocate(fd, size): sizes the file and reserves its pages, so that running out of /dev/shm is
// an ENOSPC here rather than a SIGBUS later when a mapped page is first written.
Napi::Value Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t size;
  if (!ToFd(info[0], &fd) || !ToSize(info[1], &size)) return ThrowType(env, "allocate(fd, size)");
  if (size == 0) return env.Undefined();
  int rc;
  do {
    rc = fallocate(fd, 0, 0, static_cast<off_t>(size));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno != EOPNOTSUPP && errno != ENOSYS) return ThrowErrno(env, errno, "fallocate");
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) return ThrowErrno(env, errno, "ftruncate");
  }
  return env.Undefined();
}

bool WriteAll(int fd, const uint8_t* data, size_t length, int64_t position) {
  size_t done = 0;
  while (done < length) {
    // Linux caps a single write at ~2 GiB; loop over partial writes.
    ssize_t n = pwrite(fd, data + done, length - done, static_cast<off_t>(position + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// One view's bytes and where they go.
struct Placement {
  const uint8_t* data;
  size_t length;
  int64_t offset;
};

// Reads `views` and `offsets` (arrays of equal length) for `call`, each view to fit within
// `limit` bytes: every one is checked before the caller writes a byte. False with a JS exception
// pending when one is not a view, not a size, or does not fit.
bool ReadPlacements(Napi::Env env, const Napi::Value& views_value, const Napi::Value& offsets_value, uint64_t limit,
                    const char* call, const char* into, std::vector<Placement>* out) {
  Napi::Array views = views_value.As<Napi::Array>();
  Napi::Array offsets = offsets_value.As<Napi::Array>();
  uint32_t count = views.Length();
  if (offsets.Length() != count) {
    ThrowType(env, (std::string(call) + ": views and offsets differ in length").c_str());
    return false;
  }
  out->resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Placement& placement = (*out)[i];
    if (!ViewBytes(views.Get(i), &placement.data, &placement.length) || !ToSize(offsets.Get(i), &placement.offset)) {
      ThrowType(env, (std::string(call) + ": each view must be an ArrayBuffer or a view, each offset a size").c_str());
      return false;
    }
    if (static_cast<uint64_t>(placement.offset) + placement.length > limit) {
      Napi::RangeError::New(env, std::string(call) + ": a view does not fit in " + into).ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

// fill(fd, size, views, offsets): grows the segment to `size` bytes if shorter and writes each
// view at its offset with pwrite. Measured against a shared mapping plus memcpy (with and without
// MAP_POPULATE, after fallocate): pwrite is ~1.6x faster on fresh tmpfs pages, needs no mapping at
// all, and a full /dev/shm is an ENOSPC error here rather than a SIGBUS.
Napi::Value Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t size;
  if (!ToFd(info[0], &fd) || !ToSize(info[1], &size) || !info[2].IsArray() || !info[3].IsArray()) {
    return ThrowType(env, "fill(fd, size, views, offsets)");
  }
  std::vector<Placement> placements;
  if (!ReadPlacements(env, info[2], info[3], static_cast<uint64_t>(size), "fill", "the segment", &placements)) return env.Undefined();
  // Grown to `size`, never shrunk: a reused file larger than the object keeps its pages.
  struct stat st;
  if (fstat(fd, &st) != 0) return ThrowErrno(env, errno, "fstat");
  if (st.st_size < size && ftruncate(fd, static_cast<off_t>(size)) != 0) return ThrowErrno(env, errno, "ftruncate");
  for (const Placement& placement : placements) {
    if (!WriteAll(fd, placement.data, placement.length, placement.offset)) return ThrowErrno(env, errno, "pwrite");
  }
  return env.Undefined();
}

// copy(buffer, views, offsets): copies each view into `buffer` (a mapping) at its offset, at
// memory speed whatever the alignment (copy.cc). Every range is checked before a byte is copied.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer() || !info[1].IsArray() || !info[2].IsArray()) return ThrowType(env, "copy(buffer, views, offsets)");
  Napi::ArrayBuffer target = info[0].As<Napi::ArrayBuffer>();
  std::vector<Placement> placements;
  if (!ReadPlacements(env, info[1], info[2], target.ByteLength(), "copy", "the buffer", &placements)) return env.Undefined();
  uint8_t* base = static_cast<uint8_t*>(target.Data());
  for (const Placement& placement : placements) {
    if (placement.length > 0) shoal::CopyBytes(base + placement.offset, placement.data, placement.length);
  }
  return env.Undefined();
}

Napi::Value Size(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ToFd(info[0], &fd)) return ThrowType(env, "size(fd)");
  struct stat st;
  if (fstat(fd, &st) != 0) return ThrowErrno(env, errno, "fstat");
  return Napi::Number::New(env, static_cast<double>(st.st_size));
}

// map(fd, length, shared, populate): shared maps read-write MAP_SHARED (writes reach the file);
// otherwise MAP_PRIVATE, write-protected and watched (write-watch.cc): reads run in place, the
// first write makes the mapping writable and marks it written, and writes copy the touched page
// into this process only.
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t length;
  if (!ToFd(info[0], &fd) || !ToSize(info[1], &length)) return ThrowType(env, "map(fd, length, shared, populate, path)");
  bool shared = info[2].ToBoolean().Value();
  bool populate = info[3].ToBoolean().Value();
  if (length == 0) return Napi::ArrayBuffer::New(env, 0);
  if (!shared) {
    // The lock goes with the description's last reference: the caller's close, or this
    // mapping's munmap, whichever is later.
    if (!TryLock(fd, LOCK_SH)) {
      // The store is reusing this file's memory: the object it held is gone.
      return ThrowErrno(env, errno == EWOULDBLOCK ? ENOENT : errno, "flock");
    }
    if (info[4].IsString() && !NamesFile(info[4].As<Napi::String>().Utf8Value(), fd)) return ThrowErrno(env, ENOENT, "stat");
  }
  int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | (populate ? MAP_POPULATE : 0);
  void* address = mmap(nullptr, static_cast<size_t>(length), shared ? PROT_READ | PROT_WRITE : PROT_READ, flags, fd, 0);
  if (address == MAP_FAILED) return ThrowErrno(env, errno, "mmap");
  if (!shared) WatchOrOpen(address, static_cast<size_t>(length));
  Mapping* mapping = new Mapping{address, static_cast<size_t>(length), false};
  {
    std::lock_guard<std::mutex> guard(mappings_mutex);
    mappings_by_address[address] = mapping;
  }
  live_mappings.fetch_add(1, std::memory_order_relaxed);
  live_mapped_bytes.fetch_add(length, std::memory_order_relaxed);
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, address, mapping->length, Unmap, mapping);
  if (env.IsExceptionPending()) {
    Unmap(env, address, mapping);
    return env.Undefined();
  }
  return buffer;
}

// remapPrivate(buffer, fd): replaces a shared mapping in place with a copy-on-write mapping of
// the same file, atomically (MAP_FIXED). Views the caller already holds keep their contents but
// from now on their writes stay in this process: this is how a sealed object becomes immutable
// without invalidating the writer's array.
Napi::Value RemapPrivate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!info[0].IsArrayBuffer() || !ToFd(info[1], &fd)) return ThrowType(env, "remapPrivate(buffer, fd)");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.ByteLength() == 0) return env.Undefined();
  if (FindMapping(buffer.Data()) == nullptr) return ThrowType(env, "remapPrivate: the buffer is not a mapping made by map()");
  if (!TryLock(fd, LOCK_SH)) return ThrowErrno(env, errno, "flock");
  // Watched before the mapping turns read-only: a write racing the seal (from another thread) is
  // then caught and allowed, never a crash.
  bool watched = shoal::WatchRegion(buffer.Data(), buffer.ByteLength());
  void* address = mmap(buffer.Data(), buffer.ByteLength(), watched ? PROT_READ : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (address == MAP_FAILED) {
    int saved = errno;
    if (watched) shoal::UnwatchRegion(buffer.Data());
    return ThrowErrno(env, saved, "mmap");
  }
  return env.Undefined();
}

// reclaim(from, to): takes the exclusive lock on the file `from` without waiting and, if no
// process holds a shared one (no process maps it to read), renames it to `to` and returns true:
// its memory may be written again. Returns false, changing nothing, while someone maps it.
Napi::Value Reclaim(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) return ThrowType(env, "reclaim(from, to)");
  std::string from = info[0].As<Napi::String>().Utf8Value();
  std::string to = info[1].As<Napi::String>().Utf8Value();
  int fd = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, errno, "open");
  if (!TryLock(fd, LOCK_EX)) {
    int saved = errno;
    close(fd);
    if (saved == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    return ThrowErrno(env, saved, "flock");
  }
  // Renamed while locked: a reader that opened `from` before and locks after finds the name gone.
  int rc = renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE);
  int saved = errno;
  close(fd);
  if (rc != 0) return ThrowErrno(env, saved, "rename");
  return Napi::Boolean::New(env, true);
}

// rename(from, to): gives a segment file another name (a recycled file becomes a new object's);
// never replaces a file already named `to` (EEXIST).
Napi::Value Rename(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) return ThrowType(env, "rename(from, to)");
  std::string from = info[0].As<Napi::String>().Utf8Value();
  std::string to = info[1].As<Napi::String>().Utf8Value();
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) return ThrowErrno(env, errno, "rename");
  return env.Undefined();
}

// unmap(buffer): unmaps a mapping made by map() now, detaching the buffer (its views become
// empty) instead of waiting for the garbage collector: the store's own writing mappings of
// memory it gives up, and a worker's mapping of a lent file it has filled.
Napi::Value UnmapNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) return ThrowType(env, "unmap(buffer)");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.ByteLength() == 0) return env.Undefined();
  Mapping* mapping = FindMapping(buffer.Data());
  if (mapping == nullptr) return ThrowType(env, "unmap: the buffer is not a mapping made by map()");
  // Detached first, so no view can touch the memory; unmapped here and now (Node runs the
  // finalizer on a later turn, which then only frees the record).
  buffer.Detach();
  {
    std::lock_guard<std::mutex> guard(mappings_mutex);
    mappings_by_address.erase(mapping->address);
  }
  shoal::UnwatchRegion(mapping->address);
  munmap(mapping->address, mapping->length);
  mapping->unmapped = true;
  return env.Undefined();
}

// written(buffer): whether a copy-on-write mapping made by map() or remapPrivate() has been
// written since it was made (a mapping that could not be watched counts as written).
Napi::Value Written(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) return ThrowType(env, "written(buffer)");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.ByteLength() == 0) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, shoal::RegionWritten(buffer.Data()));
}

Napi::Value Unlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "unlink(path)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (unlink(path.c_str()) != 0) return ThrowErrno(env, errno, "unlink");
  return env.Undefined();
}

struct Slice {
  Napi::Reference<Napi::ArrayBuffer> parent;
};

void ReleaseSlice(Napi::Env /*env*/, void* /*data*/, Slice* slice) { delete slice; }

// slice(buffer, offset, length): a new ArrayBuffer over part of `buffer`'s memory, with no copy.
// It keeps `buffer` (and so the mapping) alive for as long as it lives itself.
Napi::Value SliceBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t offset, length;
  if (!info[0].IsArrayBuffer() || !ToSize(info[1], &offset) || !ToSize(info[2], &length)) {
    return ThrowType(env, "slice(buffer, offset, length)");
  }
  Napi::ArrayBuffer parent = info[0].As<Napi::ArrayBuffer>();
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > parent.ByteLength()) {
    Napi::RangeError::New(env, "slice(buffer, offset, length): range outside the buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (length == 0) return Napi::ArrayBuffer::New(env, 0);
  Slice* slice = new Slice{Napi::Persistent(parent)};
  uint8_t* data = static_cast<uint8_t*>(parent.Data()) + offset;
  Napi::ArrayBuffer result = Napi::ArrayBuffer::New(env, data, static_cast<size_t>(length), ReleaseSlice, slice);
  if (env.IsExceptionPending()) {
    delete slice;
    return env.Undefined();
  }
  return result;
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("mappings", Napi::Number::New(env, static_cast<double>(live_mappings.load())));
  stats.Set("mappedBytes", Napi::Number::New(env, static_cast<double>(live_mapped_bytes.load())));
  stats.Set("pageSize", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
  return stats;
}

// setParentDeathSignal(signal): asks the kernel to send `signal` to this process when its parent
// dies, however it dies (SIGKILL included). Worker processes use it so they never outlive their
// node. Returns the parent pid at the time of the call, so the caller can detect a parent that
// died before the request took effect.
Napi::Value SetParentDeathSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t signal;
  if (!ToSize(info[0], &signal) || signal > 64) return ThrowType(env, "setParentDeathSignal(signal)");
  if (prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(signal)) != 0) return ThrowErrno(env, errno, "prctl");
  return Napi::Number::New(env, static_cast<double>(getppid()));
}

// descriptorLimit(raise): this process's RLIMIT_NOFILE as { soft, hard }. With `raise`, the soft
// limit is first set to the hard one (what Go's runtime and Ray do at start): the default soft
// limit of 1024 is far below what a node serving many connections and segments needs, and only
// the hard limit is the administrator's choice. Node has no API for either.
Napi::Value DescriptorLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return ThrowErrno(env, errno, "getrlimit");
  if (info.Length() > 0 && info[0].ToBoolean().Value() && limit.rlim_cur != limit.rlim_max) {
    struct rlimit raised = {limit.rlim_max, limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) return ThrowErrno(env, errno, "setrlimit");
    limit = raised;
  }
  auto number = [&](rlim_t value) {
    return value == RLIM_INFINITY ? Napi::Number::New(env, INFINITY) : Napi::Number::New(env, static_cast<double>(value));
  };
  Napi::Object result = Napi::Object::New(env);
  result.Set("soft", number(limit.rlim_cur));
  result.Set("hard", number(limit.rlim_max));
  return result;
}

// Counters in a shared mapping (the session's capacity page): 64-bit words that processes of a
// session update at once. JS Atomics cannot be used on them: the mappings are plain external
// ArrayBuffers, not SharedArrayBuffers. Each call names a buffer and the byte offset of an
// aligned word in it, and is one atomic instruction (or a compare-and-swap loop) on that word.
bool CounterAt(const Napi::CallbackInfo& info, std::atomic<int64_t>** word) {
  int64_t offset;
  if (!info[0].IsArrayBuffer() || !ToSize(info[1], &offset)) return false;
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (offset % 8 != 0 || static_cast<uint64_t>(offset) + 8 > buffer.ByteLength()) return false;
  // std::atomic<int64_t> is lock-free and layout-compatible with int64_t on every target Node
  // supports (checked below), so a mapped word can be used as one.
  *word = reinterpret_cast<std::atomic<int64_t>*>(static_cast<uint8_t*>(buffer.Data()) + offset);
  return true;
}
static_assert(sizeof(std::atomic<int64_t>) == sizeof(int64_t) && std::atomic<int64_t>::is_always_lock_free,
              "a shared counter must be a plain lock-free 64-bit word");

// Signed deltas and expected values: any integer JavaScript holds exactly.
bool ToInteger(const Napi::Value& value, int64_t* out) {
  if (!value.IsNumber()) return false;
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

// Adds `delta` to the word if `allowed(current value)`, as one compare-and-swap loop: the check
// and the add see the same value, whatever other processes do meanwhile. Returns whether it did.
template <typename Allowed>
bool AddIf(std::atomic<int64_t>* word, int64_t delta, Allowed allowed) {
  int64_t current = word->load(std::memory_order_relaxed);
  do {
    if (!allowed(current)) return false;
  } while (!word->compare_exchange_weak(current, current + delta, std::memory_order_acq_rel, std::memory_order_relaxed));
  return true;
}

// loadCounter(buffer, offset) -> the word's value.
Napi::Value LoadCounter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::atomic<int64_t>* word;
  if (!CounterAt(info, &word)) return ThrowType(env, "loadCounter(buffer, offset)");
  return Napi::Number::New(env, static_cast<double>(word->load(std::memory_order_acquire)));
}

// addToCounter(buffer, offset, delta) -> the new value.
Napi::Value AddToCounter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::atomic<int64_t>* word;
  int64_t delta;
  if (!CounterAt(info, &word) || !ToInteger(info[2], &delta)) return ThrowType(env, "addToCounter(buffer, offset, delta)");
  return Napi::Number::New(env, static_cast<double>(word->fetch_add(delta, std::memory_order_acq_rel) + delta));
}

// reserveOnCounter(buffer, offset, size, limit) -> whether `size` was added: only if the word
// stays at most `limit`. The check and the add are one compare-and-swap, so writers in
// different processes can never take the same room twice.
Napi::Value ReserveOnCounter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::atomic<int64_t>* word;
  int64_t size, limit;
  if (!CounterAt(info, &word) || !ToSize(info[2], &size) || !ToSize(info[3], &limit)) {
    return ThrowType(env, "reserveOnCounter(buffer, offset, size, limit)");
  }
  return Napi::Boolean::New(env, AddIf(word, size, [&](int64_t current) { return current <= limit - size; }));
}

// takeFromCounter(buffer, offset, size) -> whether `size` was subtracted: only if the word holds
// at least that much (a reservation is converted once, never below zero).
Napi::Value TakeFromCounter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::atomic<int64_t>* word;
  int64_t size;
  if (!CounterAt(info, &word) || !ToSize(info[2], &size)) return ThrowType(env, "takeFromCounter(buffer, offset, size)");
  return Napi::Boolean::New(env, AddIf(word, -size, [&](int64_t current) { return current >= size; }));
}

// exchangeCounter(buffer, offset, expected, desired) -> whether the word held `expected` and now
// holds `desired` (a process claiming a free slot of the page).
Napi::Value ExchangeCounter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::atomic<int64_t>* word;
  int64_t expected, desired;
  if (!CounterAt(info, &word) || !ToInteger(info[2], &expected) || !ToInteger(info[3], &desired)) {
    return ThrowType(env, "exchangeCounter(buffer, offset, expected, desired)");
  }
  return Napi::Boolean::New(env, word->compare_exchange_strong(expected, desired, std::memory_order_acq_rel));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  shoal::InstallWriteWatch();
  exports.Set("written", Napi::Function::New(env, Written, "written"));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("allocate", Napi::Function::New(env, Allocate, "allocate"));
  exports.Set("size", Napi::Function::New(env, Size, "size"));
  exports.Set("fill", Napi::Function::New(env, Fill, "fill"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("map", Napi::Function::New(env, Map, "map"));
  exports.Set("remapPrivate", Napi::Function::New(env, RemapPrivate, "remapPrivate"));
  exports.Set("unlink", Napi::Function::New(env, Unlink, "unlink"));
  exports.Set("reclaim", Napi::Function::New(env, Reclaim, "reclaim"));
  exports.Set("rename", Napi::Function::New(env, Rename, "rename"));
  exports.Set("unmap", Napi::Function::New(env, UnmapNow, "unmap"));
  exports.Set("slice", Napi::Function::New(env, SliceBuffer, "slice"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
  exports.Set("setParentDeathSignal", Napi::Function::New(env, SetParentDeathSignal, "setParentDeathSignal"));
  exports.Set("descriptorLimit", Napi::Function::New(env, DescriptorLimit, "descriptorLimit"));
  exports.Set("loadCounter", Napi::Function::New(env, LoadCounter, "loadCounter"));
  exports.Set("addToCounter", Napi::Function::New(env, AddToCounter, "addToCounter"));
  exports.Set("reserveOnCounter", Napi::Function::New(env, ReserveOnCounter, "reserveOnCounter"));
  exports.Set("takeFromCounter", Napi::Function::New(env, TakeFromCounter, "takeFromCounter"));
  exports.Set("exchangeCounter", Napi::Function::New(env, ExchangeCounter, "exchangeCounter"));
  return exports;
}

}  // namespace

NODE_API_MODULE(shoal_shm, Init)
