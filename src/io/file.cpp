// MappedFile, whole-file reads and crash-safe writes (FORMATS.md §11.1).
#include "gradstyle/io/file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gradstyle/core/error.hpp"

namespace gradstyle::io {

std::string quoted(const std::string& name) { return "'" + name + "'"; }

std::string human_size(uint64_t b) {
  char buf[64];
  if (b < 1000) std::snprintf(buf, sizeof buf, "%llu bytes", (unsigned long long)b);
  else if (b < 1000000) std::snprintf(buf, sizeof buf, "%.1f KB", double(b) / 1e3);
  else if (b < 1000000000) std::snprintf(buf, sizeof buf, "%.0f MB", double(b) / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f GB", double(b) / 1e9);
  return buf;
}

namespace {

std::string errno_str(int e) { return std::strerror(e); }

// Opens a regular file for reading and returns (fd, size). Refuses directories and special files.
int open_regular(const std::string& path, size_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw IOError(quoted(path) + ": cannot open: " + errno_str(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw IOError(quoted(path) + ": cannot stat: " + errno_str(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw IOError(quoted(path) + " is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IOError(quoted(path) + " is not a regular file (device, pipe or socket)");
  }
  if (st.st_size < 0 || uint64_t(st.st_size) > uint64_t(SIZE_MAX)) {
    ::close(fd);
    throw IOError(quoted(path) + ": file size does not fit in memory");
  }
  *size = size_t(st.st_size);
  return fd;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = open_regular(path, &size_);
  if (size_ > 0) {
    addr_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr_ == MAP_FAILED) {
      int e = errno;
      addr_ = nullptr;
      ::close(fd);
      throw IOError(quoted(path) + ": cannot map " + human_size(size_) + ": " + errno_str(e));
    }
  }
  ::close(fd);  // the mapping stays valid after close
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept : path_(std::move(o.path_)), addr_(o.addr_), size_(o.size_) {
  o.addr_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (addr_) ::munmap(addr_, size_);
    path_ = std::move(o.path_);
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes) {
  size_t size = 0;
  int fd = open_regular(path, &size);
  if (size > max_bytes) {
    ::close(fd);
    throw IOError(quoted(path) + " is too large (" + human_size(size) + ", limit " + human_size(max_bytes) + ")");
  }
  std::vector<uint8_t> out(size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, out.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : 0;
      ::close(fd);
      throw IOError(quoted(path) + ": read failed after " + std::to_string(got) + " of " + std::to_string(size) +
                    " bytes" + (e ? ": " + errno_str(e) : std::string(" (file shrank)")));
    }
    got += size_t(n);
  }
  ::close(fd);
  return out;
}

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  tmp_ = path + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) throw IOError(quoted(path) + ": cannot create temporary file " + quoted(tmp_) + ": " + errno_str(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) abort();
}

void AtomicFileWriter::abort() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  if (fd_ < 0) throw IOError(quoted(path_) + ": write after commit or failure");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : ENOSPC;
      abort();
      throw IOError(quoted(path_) + ": write failed: " + errno_str(e));
    }
    p += w;
    n -= size_t(w);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw IOError(quoted(path_) + ": commit after failure");
  if (::fsync(fd_) != 0) {
    int e = errno;
    abort();
    throw IOError(quoted(path_) + ": fsync failed: " + errno_str(e));
  }
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    int e = errno;
    abort();
    throw IOError(quoted(path_) + ": close failed: " + errno_str(e));
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int e = errno;
    abort();
    throw IOError(quoted(path_) + ": rename from temporary file failed: " + errno_str(e));
  }
  committed_ = true;
  // Make the rename itself durable.
  std::string dir = ".";
  if (auto slash = path_.find_last_of('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path_.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: some filesystems refuse fsync on directories
    ::close(dfd);
  }
}

void atomic_write_file(const std::string& path, ByteSpan bytes) {
  AtomicFileWriter w(path);
  w.write(bytes);
  w.commit();
}

}  // namespace gradstyle::io
