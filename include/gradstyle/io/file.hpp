#pragma once
// File access shared by all readers and writers:
// - MappedFile: read-only mmap of a regular file (directories, FIFOs and devices are refused, so a
//   reader never blocks on /dev/stdin or reads /dev/zero forever);
// - AtomicFileWriter / atomic_write_file: crash-safe writes (NAME.tmp.<pid> in the same directory,
//   checked writes, fsync, rename, fsync of the directory), FORMATS.md §11.1.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace gradstyle::io {

using ByteSpan = std::span<const uint8_t>;

class MappedFile {
 public:
  // Throws IOError naming the path when it cannot be opened, is not a regular file, or mmap fails.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  ByteSpan bytes() const { return {static_cast<const uint8_t*>(addr_), size_}; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole regular file; refuses files larger than max_bytes (IOError).
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes = uint64_t(1) << 40);

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);  // creates NAME.tmp.<pid>
  ~AtomicFileWriter();                                  // unlinks the temp file unless committed
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);  // retries short writes and EINTR; IOError on failure
  void write(ByteSpan b) { write(b.data(), b.size()); }
  // fsync, close, rename over the final name, fsync the directory. IOError on any failure (the
  // previous file, if any, is then left untouched).
  void commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  void abort() noexcept;
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

void atomic_write_file(const std::string& path, ByteSpan bytes);
inline void atomic_write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  atomic_write_file(path, ByteSpan(bytes.data(), bytes.size()));
}

// "'name'" as used at the start of every error message.
std::string quoted(const std::string& name);
// Human-readable size: "123 bytes", "4.2 KB", "123 MB".
std::string human_size(uint64_t bytes);

}  // namespace gradstyle::io
