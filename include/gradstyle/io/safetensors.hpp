#pragma once
// safetensors (FORMATS.md §6): memory-mapped reader that applies every validation rule of §6.2
// before any tensor is touched, zero-copy views and copying loads, and a crash-safe writer
// (tensors sorted by descending alignment then name, header padded to a 64-byte boundary).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gradstyle/io/file.hpp"
#include "gradstyle/io/raw_tensor.hpp"

namespace gradstyle::io {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // as written: "F32", "BF16", "F8_E4M3", ...
  uint32_t bits = 0;            // bits per element
  std::optional<DType> dtype_enum;  // nullopt for dtypes gradstyle cannot compute with (F8, U16, ...)
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;  // relative to the start of the byte buffer
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in data order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;                // 8 + header length
};

// Validates a whole safetensors file held in `file` (rules 1-11). FormatError names the file.
SafetensorsHeader parse_safetensors(ByteSpan file, const std::string& name);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // mmap + full validation
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<SafetensorsEntry>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const SafetensorsEntry* find(const std::string& name) const;
  // Zero-copy bytes of a tensor inside the mapping (valid while this object lives).
  ByteSpan view(const std::string& name) const;
  // Contiguous copy; FormatError for dtypes without a DType equivalent. KeyError-like ValueError
  // when the name is absent.
  RawTensor load(const std::string& name) const;
  NamedTensors load_all() const;
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  SafetensorsHeader header_;
};

NamedTensors load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);
// The same from bytes in memory (a checkpoint broadcast between ranks); `name` is used in errors.
NamedTensors load_safetensors_bytes(ByteSpan bytes, const std::string& name,
                                    std::map<std::string, std::string>* metadata = nullptr);
std::vector<uint8_t> serialize_safetensors(const NamedTensors& tensors,
                                           const std::map<std::string, std::string>& metadata = {});
// Crash-safe write (temp file, fsync, rename). Names must be unique, non-empty, not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32" <-> DType for the dtypes gradstyle computes with.
const char* safetensors_dtype_name(DType t);

}  // namespace gradstyle::io
