#pragma once
// Read-only ZIP directory parser (PyTorch checkpoints, .npz) and a small stored-entry writer
// (FORMATS.md §2.1). Sizes come from the central directory only; every range is checked against
// the file and against the other entries; nothing is ever extracted to disk.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "gradstyle/io/file.hpp"

namespace gradstyle::io {

uint32_t crc32(ByteSpan data, uint32_t crc = 0);

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint16_t flags = 0;
  uint32_t crc = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;               // uncompressed
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;        // start of the (compressed) data in the file
};

class ZipArchive {
 public:
  // Parses the directory of the zip in `data` (which must outlive the archive). `name` is used in
  // error messages. Throws FormatError for anything malformed.
  ZipArchive(ByteSpan data, std::string name);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& entry_name) const;
  // The stored bytes of an entry (method 0 only; FormatError otherwise).
  ByteSpan stored_data(const ZipEntry& e) const;
  // The uncompressed bytes (stored or deflate, inflated by zlib). The declared size is first
  // checked against the compressed size (deflate expands at most ~1032x); the output grows only
  // as the stream produces bytes and must come out exactly at the declared size.
  std::vector<uint8_t> extract(const ZipEntry& e) const;
  // Verifies the CRC-32 of an entry (reads every byte); FormatError on mismatch.
  void verify_crc(const ZipEntry& e) const;
  const std::string& name() const { return name_; }

 private:
  ByteSpan data_;
  std::string name_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> entries_ position
};

// Builds a zip of stored entries in memory (for .npz). Each entry's data is aligned to `align`
// bytes with an "FB" padding extra field, as PyTorch does. Entries above 4 GiB are refused.
class ZipWriter {
 public:
  explicit ZipWriter(uint32_t align = 64) : align_(align) {}
  void add(const std::string& name, ByteSpan data);
  std::vector<uint8_t> finish();

 private:
  struct Central {
    std::string name;
    uint32_t crc, size, offset;
  };
  uint32_t align_;
  std::vector<uint8_t> out_;
  std::vector<Central> central_;
};

}  // namespace gradstyle::io
